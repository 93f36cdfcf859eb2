"""Live money: what the request path may spend, held and settled without PostgreSQL.

This module owns all of it: the Redis key layout (billing.live_layout), the scripts
(billing.live_scripts), the rate window and the available-balance rule. Per organization
the store keeps the ledger's balance and head, the credit limit, open holds and pending
costs (settled, not yet booked). What a new request may hold is

    balance + limit - pending - held

Per key it keeps the spend in its budget period (booked from the ledger and its rollups,
plus what settled since; started anew when a period begins) with its holds, and the
minute's requests and tokens. Admitting is one script and settling another, so a request
costs two round trips however many limits its key has. Settling queues the request's usage
event in a stream (billing.live_stream); billing.reconcile books the events into the ledger
and pushes the new balances back (apply_ledger), which takes them out of pending only for
events still pending, so a retried booking never counts a cost twice.

With REDIS_URL the store is that Redis (or Redis Cluster), shared by every process. The
embedded default runs the same scripts on an in-process Redis (fakeredis), books each
settlement at once, and, since other processes (the credit command) write the ledger,
refreshes an account from it every GATEWAY_CACHE_SECONDS.

Admission also writes the request's intent (billing.abandoned), so that a request whose
web process dies before settling is still booked, once, by book_abandoned.
"""

import functools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import redis
from django.conf import settings

from . import live_scripts as scripts
from .abandoned import abandoned_event
from .budget_periods import period_bounds, period_id
from .charging import InsufficientBalance, KeySpendLimitReached, Prices, usage_event
from .live_layout import Layout
from .models import Account
from .money import from_units, to_units
from .queries import key_spend_booked
from .redis_pool import UNAVAILABLE, get_redis

log = logging.getLogger("mixgateway.billing")

WINDOW_SECONDS = 60  # a key's minute starts with its first request and lasts this long
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
        self.groups_ready: set[int] = set()  # billing.live_stream: the shards whose consumer group exists
        self.next_shard = 0  # where the next read of usage events starts: no shard waits behind another
        self.admit = client.register_script(scripts.ADMIT)
        self.unadmit = client.register_script(scripts.UNADMIT)
        self.settle = client.register_script(scripts.SETTLE)
        self.release = client.register_script(scripts.RELEASE)
        self.start_spend = client.register_script(scripts.START_SPEND)
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


def admit(key, request_id: str, amount: Decimal, intent: str = "", now: datetime | None = None) -> Admitted:
    """Count the request in the key's rate window and hold `amount` of the key's spend
    limit and of the organization's balance: all of it, or nothing and an exception
    (RateLimited, KeySpendLimitReached, InsufficientBalance; LiveStoreUnavailable when
    Redis cannot be reached). `intent` (billing.abandoned.intent) is kept beside the
    holds until the request settles, in the same round trip. `now` (default: the clock)
    says which budget period the key's spend limit is counted in."""
    store = _live()
    try:
        return _admit(store, key, request_id, amount, intent, now or datetime.now(UTC))
    except UNREACHABLE as e:
        raise LiveStoreUnavailable(str(e)) from e


def _admit(store: _Store, key, request_id: str, amount: Decimal, intent: str, when: datetime) -> Admitted:
    org_id, units, lay = key.organization_id, to_units(amount), store.layout
    if store.embedded:
        refreshed = store.refreshed.get(org_id)
        if refreshed is None or time.monotonic() - refreshed > settings.GATEWAY_CACHE_SECONDS:
            _load_account(store, org_id)
    keys = _admission_keys(lay, org_id, key.key_id)
    member = lay.hold_member(org_id, key.key_id, request_id)
    rate_limited = bool(key.rpm_limit or key.tpm_limit)
    now = when.timestamp()
    period = "" if key.spend_limit is None else period_id(key.budget_period, when)
    args = [key.rpm_limit or 0, key.tpm_limit or 0, WINDOW_SECONDS * 1000, request_id, units,
            "" if key.spend_limit is None else to_units(key.spend_limit), key_spend_ttl_seconds(),
            now + settings.BILLING_RESERVATION_TTL_SECONDS, member, intent, now, period]
    outcome, *values = store.admit(keys=keys, args=args)
    if outcome == "unloaded":
        # First use of the key or the organization, or Redis lost them: start both from
        # the ledger, then ask once more.
        spend_missing, account_missing = values
        if spend_missing:
            booked = key_spend_booked(key.key_id, period_bounds(key.budget_period, when))
            # Another process whose clock is a little ahead may have started the next period
            # already: then this request counts in that one.
            args[-1] = store.start_spend(keys=[lay.key_spend(org_id, key.key_id)],
                                         args=[period, booked, key_spend_ttl_seconds()])
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


@functools.lru_cache(maxsize=65536)
def _admission_keys(lay: Layout, org_id: int, key_id: int) -> tuple[str, ...]:
    """ADMIT's KEYS (billing.live_scripts), in its order; UNADMIT takes the same. Remembered:
    they are the same for every request of the key, and naming them is a dozen calls."""
    shard = lay.shard_of(org_id)
    return (*lay.window(org_id, key_id), lay.key_spend(org_id, key_id), lay.account(org_id), lay.holds(shard),
            lay.intents_by_time(shard), lay.intents(shard))


@functools.lru_cache(maxsize=65536)
def _settlement_keys(lay: Layout, org_id: int, key_id: int | None) -> tuple[str, ...]:
    """SETTLE's KEYS but the last, the request's own tombstone."""
    shard = lay.shard_of(org_id)
    return (lay.account(org_id), lay.holds(shard), lay.stream(shard), lay.key_spend(org_id, key_id),
            lay.window(org_id, key_id)[1], lay.intents_by_time(shard), lay.intents(shard))


def _window(allowed: bool, requests, tokens, ttl_ms) -> LimitState:
    return LimitState(allowed, int(requests), int(tokens), int(ttl_ms) / 1000)


def settle(key, event_fields: dict, prices: Prices, tokens: int) -> tuple[Decimal, Decimal | None]:
    """Turn the request's holds into its real cost, queue its usage event and count its
    tokens in the key's window. Returns the cost and the balance once that cost is booked
    (None if unknown). If Redis cannot take it, the settlement is kept in the durable
    outbox instead (billing.outbox) and booked from there: it is never lost."""
    cost, event = usage_event(event_fields, prices)
    store = _live()
    try:
        balance, pending, outcome = _settle(store, event, cost, key.spend_limit is not None,
                                            tokens if key.tpm_limit else 0, "settle")
    except UNREACHABLE as e:
        from .outbox import keep  # the outbox books through this module: imported when needed

        keep(event, e)
        return cost, None
    if outcome == "abandoned":
        log.warning("request %s settled after the sweep booked it as abandoned: this settlement is dropped",
                    event["request_id"])
        return cost, None
    _book_soon(store)
    return cost, (from_units(int(balance) - int(pending)) if balance is not None else None)


def _settle(store: _Store, event: dict, cost: Decimal, spend_limited: bool, tokens: int, mode: str) -> list:
    lay = store.layout
    org_id, key_id, request_id = event["organization_id"], event["key_id"], event["request_id"]
    return store.settle(
        keys=(*_settlement_keys(lay, org_id, key_id), lay.tombstone(org_id, request_id)),
        args=[request_id, to_units(cost), orjson.dumps(event).decode(), lay.hold_member(org_id, key_id, request_id),
              1 if spend_limited else 0, tokens, WINDOW_SECONDS * 1000, mode, key_spend_ttl_seconds()],
    )


def _book_soon(store: _Store) -> None:
    if store.embedded:
        from .tasks import reconcile_usage

        reconcile_usage.delay()  # the embedded default books in-process, right away


def release(organization_id: int, key_id, request_id: str, booked_cost: Decimal = Decimal(0)) -> bool:
    """Give back a request's holds without queuing a usage event: an abandoned request,
    or one whose usage the ledger booked from the outbox (`booked_cost` then joins the
    key's spend, unless its settlement reached the store after all). True if the
    organization's hold was still open."""
    store = _live()
    lay = store.layout
    shard = lay.shard_of(organization_id)
    return bool(store.release(keys=[lay.account(organization_id), lay.holds(shard),
                                    lay.key_spend(organization_id, key_id), lay.intents_by_time(shard),
                                    lay.intents(shard)],
                              args=[request_id, lay.hold_member(organization_id, key_id, request_id),
                                    to_units(booked_cost)]))


def book_abandoned(now: float | None = None) -> int:
    """Book each request admitted more than GATEWAY_ABANDONED_AFTER_SECONDS ago that never
    settled (its web process died) as one "abandoned" usage event charged its prompt
    estimate, releasing its holds (billing.abandoned). Returns how many were booked."""
    before = (now or time.time()) - settings.GATEWAY_ABANDONED_AFTER_SECONDS
    store = _live()
    booked = 0
    for shard in range(store.layout.shards):
        while request_ids := store.redis.zrangebyscore(store.layout.intents_by_time(shard), "-inf", before,
                                                       start=0, num=500):
            booked += sum(_abandon(store, shard, request_id) for request_id in request_ids)
            if len(request_ids) < 500:
                break
    if booked:
        log.warning("booked %s abandoned requests (their web process died before settling)", booked)
        _book_soon(store)
    return booked


def _abandon(store: _Store, shard: int, request_id: str) -> bool:
    """Book one request from its intent, unless it settled meanwhile (the script checks)."""
    intent = store.redis.hget(store.layout.intents(shard), request_id)
    if intent is None:  # settled between the two reads
        store.redis.zrem(store.layout.intents_by_time(shard), request_id)
        return False
    cost, event = abandoned_event(intent)
    return _settle(store, event, cost, True, 0, "abandon")[2] == "settled"


def release_expired(now: float | None = None) -> int:
    """Release the holds of requests that never settled (their web process died); one
    whose intent is still there is booked as abandoned rather than let go free."""
    store = _live()
    released = 0
    for shard in range(store.layout.shards):
        for member in store.redis.zrangebyscore(store.layout.holds(shard), "-inf", now or time.time(), start=0,
                                                num=1000):
            org_id, _, rest = member.partition(":")
            key_id, _, request_id = rest.rpartition(":")
            if not _abandon(store, shard, request_id):
                released += release(int(org_id), key_id, request_id)
    return released


# -- the ledger's side --------------------------------------------------------------------


def _load_account(store: _Store, org_id: int) -> None:
    # Three values, not a model object: this runs on every organization's first request.
    account = (Account.objects.filter(organization_id=org_id)
               .values_list("ledger_head", "balance", "credit_limit").first())
    if account is None:
        _apply(store, org_id, 0, 0, 0)
    else:
        head, balance, credit_limit = account
        _apply(store, org_id, head, to_units(balance), to_units(credit_limit))


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
