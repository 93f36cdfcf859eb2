"""Live money: what the request path may spend, held and settled without PostgreSQL.

This module owns all of it: the Redis key layout (billing.live_layout), the scripts
(billing.live_scripts), the rate window and the available-balance rule. Per organization
the store keeps the ledger's balance and head, the credit limit, open holds and pending
costs (settled, not yet booked). What a new request may hold is

    balance + limit - pending - held

Per key it keeps the spend (booked from the ledger and its rollups, plus what settled
since) with its holds, and the minute's requests and tokens. Admitting is one script and
settling another, so a request costs two round trips however many limits its key has.
Settling queues the request's usage event in a stream; billing.reconcile books the events
into the ledger and pushes the new balances back (apply_ledger), which takes them out of
pending only for events still pending, so a retried booking never counts a cost twice.

With REDIS_URL the store is that Redis (or Redis Cluster), shared by every process. The
embedded default runs the same scripts on an in-process Redis (fakeredis), books each
settlement at once, and, since other processes (the credit command) write the ledger,
refreshes an account from it every GATEWAY_CACHE_SECONDS.
"""

import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

import orjson
import redis
from django.conf import settings
from django.db import connection

from . import live_scripts as scripts
from .charging import InsufficientBalance, KeySpendLimitReached, Prices, usage_event
from .live_layout import Layout
from .models import Account, UsageDailyRollup, UsageRecord
from .money import from_units, to_units
from .redis_pool import UNAVAILABLE, get_redis

log = logging.getLogger("mixgateway.billing")

WINDOW_SECONDS = 60  # a key's minute starts with its first request and lasts this long
GROUP = "reconcilers"  # the usage events' consumer group
UNREACHABLE = UNAVAILABLE

__all__ = ["Admitted", "InsufficientBalance", "KeySpendLimitReached", "LimitState", "LiveStoreUnavailable",
           "RateLimited", "Snapshot", "admit", "settle", "release"]


@dataclass(frozen=True)
class LimitState:
    allowed: bool
    requests: int
    tokens: int
    reset_seconds: float


@dataclass(frozen=True)
class Snapshot:
    balance: int
    limit: int
    pending: int
    held: int

    @property
    def available(self) -> int:
        # The available-balance rule once more, exactly: the script compared doubles.
        return self.balance + self.limit - self.pending - self.held


@dataclass(frozen=True)
class Admitted:
    window: LimitState | None  # None when the key has no rate limits
    # The organization's balance once everything settled so far is booked, just before
    # this request: with its cost, the balance a caller sees after this request.
    booked_balance: Decimal


class RateLimited(Exception):
    def __init__(self, window: LimitState):
        super().__init__("the key's rate window is full")
        self.window = window


class LiveStoreUnavailable(redis.ConnectionError):
    """Redis could not be reached to admit a request: nothing was held, nothing forwarded.
    (A redis.ConnectionError, so handlers of either see it.)"""


class _Store:
    def __init__(self, client, prefix: str, embedded: bool):
        self.redis = client
        self.layout = Layout(prefix, 1 if embedded else settings.BILLING_REDIS_SHARDS)
        self.embedded = embedded
        self.refreshed: dict[int, float] = {}  # embedded: when each account last met the ledger
        self.groups_ready: set[int] = set()  # the shards whose consumer group exists
        self.next_shard = 0  # where the next read of usage events starts: no shard waits behind another
        self.admit = client.register_script(scripts.ADMIT)
        self.unadmit = client.register_script(scripts.UNADMIT)
        self.settle = client.register_script(scripts.SETTLE)
        self.release = client.register_script(scripts.RELEASE)
        self.apply = client.register_script(scripts.APPLY)


_store: _Store | None = None
_store_lock = threading.Lock()


def _live() -> _Store:
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                if settings.REDIS_URL:
                    _store = _Store(get_redis(), settings.BILLING_REDIS_PREFIX, embedded=False)
                else:
                    import fakeredis  # only the embedded default loads it

                    _store = _Store(fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True),
                                    settings.BILLING_REDIS_PREFIX, embedded=True)
    return _store


def reset() -> None:
    """Forget the process's store (tests); the embedded default's state goes with it."""
    global _store
    _store = None


def client():
    return _live().redis


def layout() -> Layout:
    return _live().layout


def key_spend_ttl_seconds() -> int:
    # Idle keys' spend expires; it is started again from the ledger on their next request.
    return settings.BILLING_RESERVATION_TTL_SECONDS * 24


# -- the request path ---------------------------------------------------------------------


def admit(key, request_id: str, amount: Decimal) -> Admitted:
    """Count the request in the key's rate window and hold `amount` of the key's spend
    limit and of the organization's balance: all of it, or nothing and an exception
    (RateLimited, KeySpendLimitReached, InsufficientBalance; LiveStoreUnavailable when
    Redis cannot be reached)."""
    store = _live()
    try:
        return _admit(store, key, request_id, amount)
    except UNREACHABLE as e:
        raise LiveStoreUnavailable(str(e)) from e


def _admit(store: _Store, key, request_id: str, amount: Decimal) -> Admitted:
    org_id, units, lay = key.organization_id, to_units(amount), store.layout
    if store.embedded:
        refreshed = store.refreshed.get(org_id)
        if refreshed is None or time.monotonic() - refreshed > settings.GATEWAY_CACHE_SECONDS:
            _load_account(store, org_id)
    keys = [*lay.window(org_id, key.key_id), lay.key_spend(org_id, key.key_id), lay.account(org_id),
            lay.holds(lay.shard_of(org_id))]
    member = lay.hold_member(org_id, key.key_id, request_id)
    rate_limited = bool(key.rpm_limit or key.tpm_limit)
    args = [key.rpm_limit or 0, key.tpm_limit or 0, WINDOW_SECONDS * 1000, request_id, units,
            "" if key.spend_limit is None else to_units(key.spend_limit), key_spend_ttl_seconds(),
            time.time() + settings.BILLING_RESERVATION_TTL_SECONDS, member]
    outcome, *values = store.admit(keys=keys, args=args)
    if outcome == "unloaded":
        # First use of the key or the organization, or Redis lost them: start both from
        # the ledger, then ask once more.
        spend_missing, account_missing = values
        if spend_missing:
            pipe = store.redis.pipeline(transaction=False)
            pipe.hsetnx(lay.key_spend(org_id, key.key_id), "spent", key_spend_booked(key.key_id))
            pipe.hsetnx(lay.key_spend(org_id, key.key_id), "held", 0)
            pipe.execute()
        if account_missing:
            _load_account(store, org_id)
        outcome, *values = store.admit(keys=keys, args=args)
        if outcome == "unloaded":  # evicted again at once: Redis is out of memory
            raise LiveStoreUnavailable("the live store dropped the state it was just given")
    if outcome == "rate":
        raise RateLimited(_window(False, *values))
    if outcome == "spend":
        raise KeySpendLimitReached()
    snapshot = Snapshot(*(int(v) for v in values[-4:]))
    if outcome == "ok" and snapshot.available < units:
        # The doubles agreed, the exact integers do not (only within a few picodollars
        # at balances above 9,000 USD): refuse, and take back what the script held.
        store.unadmit(keys=keys, args=[request_id, 1 if rate_limited else 0, member])
        outcome = "balance"
    if outcome == "balance":
        raise InsufficientBalance(from_units(snapshot.available), amount)
    window = _window(True, *values[:3]) if rate_limited else None
    return Admitted(window, from_units(snapshot.balance - snapshot.pending))


def _window(allowed: bool, requests, tokens, ttl_ms) -> LimitState:
    return LimitState(allowed, int(requests), int(tokens), int(ttl_ms) / 1000)


def settle(key, event_fields: dict, prices: Prices, tokens: int) -> tuple[Decimal, Decimal | None]:
    """Turn the request's holds into its real cost, queue its usage event and count its
    tokens in the key's window. Returns the cost and the balance once that cost is booked
    (None if unknown). If Redis cannot take it, the settlement is kept in the durable
    outbox instead (billing.outbox) and booked from there: it is never lost."""
    cost, event = usage_event(event_fields, prices)
    store = _live()
    lay = store.layout
    org_id, request_id = event["organization_id"], event["request_id"]
    shard = lay.shard_of(org_id)
    try:
        balance, pending = store.settle(
            keys=[lay.account(org_id), lay.holds(shard), lay.stream(shard), lay.key_spend(org_id, key.key_id),
                  lay.window(org_id, key.key_id)[1]],
            args=[request_id, to_units(cost), orjson.dumps(event).decode(),
                  lay.hold_member(org_id, key.key_id, request_id), 1 if key.spend_limit is not None else 0,
                  tokens if key.tpm_limit else 0, WINDOW_SECONDS * 1000],
        )
    except UNREACHABLE as e:
        from .outbox import keep  # the outbox books through this module: imported when needed

        keep(event, e)
        return cost, None
    if store.embedded:
        from .tasks import reconcile_usage

        reconcile_usage.delay()  # the embedded default books in-process, right away
    return cost, (from_units(int(balance) - int(pending)) if balance is not None else None)


def release(organization_id: int, key_id, request_id: str, booked_cost: Decimal = Decimal(0)) -> bool:
    """Give back a request's holds without queuing a usage event: an abandoned request,
    or one whose usage the ledger booked from the outbox (`booked_cost` then joins the
    key's spend, unless its settlement reached the store after all). True if the
    organization's hold was still open."""
    store = _live()
    lay = store.layout
    return bool(store.release(keys=[lay.account(organization_id), lay.holds(lay.shard_of(organization_id)),
                                    lay.key_spend(organization_id, key_id)],
                              args=[request_id, lay.hold_member(organization_id, key_id, request_id),
                                    to_units(booked_cost)]))


def release_expired(now: float | None = None) -> int:
    """Release the holds of requests that never settled (their web process died)."""
    store = _live()
    released = 0
    for shard in range(store.layout.shards):
        for member in store.redis.zrangebyscore(store.layout.holds(shard), "-inf", now or time.time(), start=0,
                                                num=1000):
            org_id, _, rest = member.partition(":")
            key_id, _, request_id = rest.rpartition(":")
            released += release(int(org_id), key_id, request_id)
    return released


# -- the ledger's side --------------------------------------------------------------------


def key_spend_booked(key_id: int) -> int:
    """What the ledger has booked for the key in all (picodollars): its usage records and
    the daily rollups that retention made of older ones. One statement, so a record that
    moves into a rollup meanwhile is counted exactly once."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COALESCE(SUM(cost), 0) FROM {UsageRecord._meta.db_table} WHERE api_key_id = %s)"
            f" + (SELECT COALESCE(SUM(cost), 0) FROM {UsageDailyRollup._meta.db_table} WHERE api_key_id = %s)",
            [key_id, key_id],
        )
        return int(cursor.fetchone()[0])


def _load_account(store: _Store, org_id: int) -> None:
    account = Account.objects.filter(organization_id=org_id).first()
    if account is None:
        _apply(store, org_id, 0, 0, 0)
    else:
        _apply(store, org_id, account.ledger_head, to_units(account.balance), to_units(account.credit_limit))


def _apply(store: _Store, org_id: int, head: int, balance: int, limit: int, booked_request_ids=()) -> None:
    store.apply(keys=[store.layout.account(org_id)], args=[head, balance, limit, *booked_request_ids])
    if store.embedded:
        store.refreshed[org_id] = time.monotonic()


def apply_ledger(org_id: int, head: int, balance: int, limit: int, booked_request_ids=()) -> None:
    """The committed ledger state of an account (picodollars), with the requests just
    booked for it: they leave pending."""
    _apply(_live(), org_id, head, balance, limit, booked_request_ids)


def snapshot(org_id: int) -> Snapshot | None:
    values = _live().redis.hmget(layout().account(org_id), "balance", "limit", "pending", "held")
    return None if values[0] is None else Snapshot(*(int(v) for v in values))


def _shards() -> range:
    return range(layout().shards)


def outstanding_holds() -> int:
    return sum(_live().redis.zcard(layout().holds(shard)) for shard in _shards())


def read_events(consumer: str, count: int, claim_idle_ms: int) -> list[tuple[str, dict]]:
    """Usage events to book: first those a dead consumer left unacknowledged for longer
    than claim_idle_ms, then new ones, from each shard in turn. Each stays pending in its
    stream until ack() is given the id returned here (`<shard>/<stream id>`)."""
    store = _live()
    shards = store.layout.shards
    start, store.next_shard = store.next_shard, (store.next_shard + 1) % shards
    events = []
    for shard in ((start + i) % shards for i in range(shards)):
        if len(events) >= count:
            break
        try:
            entries = _take(store, shard, consumer, count - len(events), claim_idle_ms)
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # Redis lost the stream (a restart without persistence): make it anew.
            store.groups_ready.discard(shard)
            entries = _take(store, shard, consumer, count - len(events), claim_idle_ms)
        events.extend((f"{shard}/{event_id}", orjson.loads(fields["e"])) for event_id, fields in entries)
    return events


def _take(store: _Store, shard: int, consumer: str, count: int, claim_idle_ms: int) -> list:
    stream = store.layout.stream(shard)
    if shard not in store.groups_ready:
        try:
            store.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        store.groups_ready.add(shard)
    _, claimed, *_ = store.redis.xautoclaim(stream, GROUP, consumer, claim_idle_ms, "0-0", count=count)
    entries = [e for e in claimed if e[1]]
    if len(entries) < count:
        fresh = store.redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count - len(entries))
        for _, items in fresh or ():
            entries.extend(items)
    return entries


def ack(event_ids: list[str]) -> None:
    """The events are booked: they leave their streams."""
    by_shard: dict[int, list[str]] = {}
    for event_id in event_ids:
        shard, _, stream_id = event_id.partition("/")
        by_shard.setdefault(int(shard), []).append(stream_id)
    for shard, stream_ids in by_shard.items():
        pipe = _live().redis.pipeline()  # one stream, one slot: on a cluster too
        pipe.xack(layout().stream(shard), GROUP, *stream_ids)
        pipe.xdel(layout().stream(shard), *stream_ids)
        pipe.execute()


def backlog() -> int:
    return sum(_live().redis.xlen(layout().stream(shard)) for shard in _shards())


def oldest_event_age_seconds() -> float:
    """How long the oldest usage event not yet booked has waited (0 if none)."""
    oldest = [entries[0][0] for shard in _shards() if (entries := _live().redis.xrange(
        layout().stream(shard), "-", "+", count=1))]
    if not oldest:
        return 0.0
    # Events leave the stream only once booked, and a stream id starts with its
    # creation time in milliseconds.
    return max(time.time() - min(int(event_id.split("-", 1)[0]) for event_id in oldest) / 1000, 0.0)
