"""Live account state for the request path: reservations, settled-but-unbooked costs,
and the booked balance, kept where the request path can reach them without PostgreSQL.

Per organization the store holds: balance and head (the ledger's balance and the id of its
last entry), limit (the credit limit), held (open reservations) and pending (costs settled
but not yet booked into the ledger). What a new request may spend is

    balance + limit - pending - held

Settling a request moves its reservation into pending and queues its usage event in the
same atomic step (with Redis, gateway.admission's settle script; LocalStore.settle here); booking the event into the ledger (billing.reconcile) lowers the balance
and removes it from pending, also in one step, and only for events that are still pending,
so a retried booking can never count a cost twice.
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings

from billing.redis_pool import get_redis

# Lua numbers are doubles: every amount travels as a string and changes only through
# HINCRBY, which is exact on 64-bit integers. Only the spend check compares doubles, and
# Python repeats it exactly on the values the script returns.
RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local v = redis.call('HMGET', KEYS[1], 'balance', 'limit', 'pending', 'held')
if tonumber(v[1]) + tonumber(v[2]) - tonumber(v[3]) - tonumber(v[4]) < tonumber(ARGV[2]) then
  return {0, v[1], v[2], v[3], v[4]}
end
redis.call('HSET', KEYS[1], 'h:' .. ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'held', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return {1, v[1], v[2], v[3], v[4]}
"""

RELEASE = """
local held = redis.call('HGET', KEYS[1], 'h:' .. ARGV[1])
if held then
  redis.call('HDEL', KEYS[1], 'h:' .. ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'held', '-' .. held)
end
redis.call('ZREM', KEYS[2], ARGV[2])
return held and 1 or 0
"""

APPLY = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'balance', ARGV[2], 'head', ARGV[1], 'limit', ARGV[3], 'pending', 0, 'held', 0)
  return 1
end
for i = 4, #ARGV do
  local c = redis.call('HGET', KEYS[1], 'p:' .. ARGV[i])
  if c then
    redis.call('HDEL', KEYS[1], 'p:' .. ARGV[i])
    redis.call('HINCRBY', KEYS[1], 'pending', '-' .. c)
  end
end
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'head')) then
  redis.call('HSET', KEYS[1], 'balance', ARGV[2], 'head', ARGV[1])
end
redis.call('HSET', KEYS[1], 'limit', ARGV[3])
return 0
"""


@dataclass(frozen=True)
class Snapshot:
    balance: int
    limit: int
    pending: int
    held: int

    @property
    def available(self) -> int:
        return self.balance + self.limit - self.pending - self.held


class AccountNotLoaded(Exception):
    """The store has no state for this organization yet: load it from the ledger first."""


class RedisStore:
    GROUP = "reconcilers"

    def __init__(self, client, prefix: str):
        self.redis = client
        self.prefix = prefix
        self.stream = f"{prefix}:usage-events"
        self.holds = f"{prefix}:holds"
        self._reserve = self.redis.register_script(RESERVE)
        self._release = self.redis.register_script(RELEASE)
        self._apply = self.redis.register_script(APPLY)
        self._group_ready = False

    def account_key(self, org_id: int) -> str:
        return f"{self.prefix}:acct:{org_id}"

    @staticmethod
    def hold_member(org_id: int, request_id: str) -> str:
        """A reservation in the holds set, scored by when it expires (release_expired)."""
        return f"{org_id}:{request_id}"

    def reserve(self, org_id: int, request_id: str, amount: int, ttl_seconds: float) -> tuple[bool, Snapshot]:
        result = self._reserve(
            keys=[self.account_key(org_id), self.holds],
            args=[request_id, amount, time.time() + ttl_seconds, self.hold_member(org_id, request_id)],
        )
        if result is None:
            raise AccountNotLoaded(org_id)
        ok, *values = result
        snapshot = Snapshot(*(int(v) for v in values))
        if ok and snapshot.available < amount:
            # The script compared doubles; the exact check disagrees only within a few
            # picodollars at balances above 9,000 USD, and then we refuse to be safe.
            self.release(org_id, request_id)
            return False, snapshot
        return bool(ok), snapshot

    def release(self, org_id: int, request_id: str) -> None:
        self._release(keys=[self.account_key(org_id), self.holds],
                      args=[request_id, self.hold_member(org_id, request_id)])

    def load(self, org_id: int, head: int, balance: int, limit: int) -> None:
        """Initialise the state from the ledger if it is missing (first use, or Redis lost it)."""
        self._apply(keys=[self.account_key(org_id)], args=[head, balance, limit])

    def apply_ledger(self, org_id: int, head: int, balance: int, limit: int, booked_request_ids=()) -> None:
        self._apply(keys=[self.account_key(org_id)], args=[head, balance, limit, *booked_request_ids])

    def snapshot(self, org_id: int) -> Snapshot | None:
        values = self.redis.hmget(self.account_key(org_id), "balance", "limit", "pending", "held")
        return None if values[0] is None else Snapshot(*(int(v) for v in values))

    def release_expired(self, now: float | None = None) -> int:
        released = 0
        for member in self.redis.zrangebyscore(self.holds, "-inf", now or time.time(), start=0, num=1000):
            org_id, _, request_id = member.partition(":")
            released += self._release(keys=[self.account_key(int(org_id)), self.holds], args=[request_id, member])
        return released

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        import redis

        try:
            self.redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    def read_events(self, consumer: str, count: int, claim_idle_ms: int) -> list[tuple[str, dict]]:
        """Events to book: first those a dead consumer left unacknowledged for longer than
        claim_idle_ms, then new ones. Each stays pending until ack()."""
        import redis

        try:
            entries = self._take(consumer, count, claim_idle_ms)
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # Redis lost the stream (a restart without persistence): make it anew.
            self._group_ready = False
            entries = self._take(consumer, count, claim_idle_ms)
        return [(event_id, json.loads(fields["e"])) for event_id, fields in entries]

    def _take(self, consumer: str, count: int, claim_idle_ms: int) -> list:
        self._ensure_group()
        _, claimed, _ = self.redis.xautoclaim(self.stream, self.GROUP, consumer, claim_idle_ms, "0-0", count=count)
        entries = [e for e in claimed if e[1]]
        if len(entries) < count:
            fresh = self.redis.xreadgroup(self.GROUP, consumer, {self.stream: ">"}, count=count - len(entries))
            for _, items in fresh or ():
                entries.extend(items)
        return entries

    def ack(self, event_ids: list[str]) -> None:
        if event_ids:
            pipe = self.redis.pipeline()
            pipe.xack(self.stream, self.GROUP, *event_ids)
            pipe.xdel(self.stream, *event_ids)
            pipe.execute()

    def backlog(self) -> int:
        return self.redis.xlen(self.stream)


class LocalStore:
    """The same contract in process memory, for the embedded default (one process)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._accounts: dict[int, dict] = {}
        self._events: deque = deque()
        self._unacked: dict[str, dict] = {}
        self._seq = 0

    def reserve(self, org_id, request_id, amount, ttl_seconds):
        with self._lock:
            acct = self._accounts.get(org_id)
            if acct is None:
                raise AccountNotLoaded(org_id)
            snapshot = Snapshot(acct["balance"], acct["limit"], acct["pending"], acct["held"])
            if snapshot.available < amount:
                return False, snapshot
            acct["holds"][request_id] = amount
            acct["held"] += amount
            return True, snapshot

    def settle(self, org_id, request_id, cost, event):
        with self._lock:
            acct = self._accounts.get(org_id)
            if acct is not None:
                acct["held"] -= acct["holds"].pop(request_id, 0)
                if cost:
                    acct["pend"][request_id] = cost
                    acct["pending"] += cost
            self._seq += 1
            self._events.append((str(self._seq), event))
            return acct["balance"] - acct["pending"] if acct else None

    def release(self, org_id, request_id):
        with self._lock:
            acct = self._accounts.get(org_id)
            if acct is not None:
                acct["held"] -= acct["holds"].pop(request_id, 0)

    def load(self, org_id, head, balance, limit):
        self.apply_ledger(org_id, head, balance, limit)

    def apply_ledger(self, org_id, head, balance, limit, booked_request_ids=()):
        with self._lock:
            acct = self._accounts.get(org_id)
            if acct is None:
                self._accounts[org_id] = {"balance": balance, "head": head, "limit": limit, "pending": 0,
                                          "held": 0, "holds": {}, "pend": {}, "loaded_at": time.monotonic()}
                return
            for request_id in booked_request_ids:
                acct["pending"] -= acct["pend"].pop(request_id, 0)
            if head > acct["head"]:
                acct["balance"], acct["head"] = balance, head
            acct["limit"] = limit
            acct["loaded_at"] = time.monotonic()

    def loaded_at(self, org_id) -> float | None:
        acct = self._accounts.get(org_id)
        return acct["loaded_at"] if acct else None

    def snapshot(self, org_id):
        acct = self._accounts.get(org_id)
        return Snapshot(acct["balance"], acct["limit"], acct["pending"], acct["held"]) if acct else None

    def release_expired(self, now=None):
        return 0  # a process that dies takes its reservations with it

    def read_events(self, consumer, count, claim_idle_ms):
        with self._lock:
            now = time.monotonic()
            # Like the Redis stream: what a failed booking left unacknowledged comes back.
            batch = [(event_id, event) for event_id, (taken, event) in self._unacked.items()
                     if now - taken > claim_idle_ms / 1000][:count]
            for event_id, event in batch:
                self._unacked[event_id] = (now, event)
            while self._events and len(batch) < count:
                event_id, event = self._events.popleft()
                self._unacked[event_id] = (now, event)
                batch.append((event_id, event))
            return batch

    def ack(self, event_ids):
        with self._lock:
            for event_id in event_ids:
                self._unacked.pop(event_id, None)

    def backlog(self):
        return len(self._events) + len(self._unacked)


_store = None
_store_lock = threading.Lock()


def get_store():
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                if settings.REDIS_URL:
                    _store = RedisStore(get_redis(), settings.BILLING_REDIS_PREFIX)
                else:
                    _store = LocalStore()
    return _store


def reset_store() -> None:
    """Forget the process's store (tests, and after a fork)."""
    global _store
    _store = None
