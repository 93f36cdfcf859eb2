"""Per-key spend limits: what a key has spent in all, kept live next to the balances.

A key's state is its all-time spend (settled costs) and its open reservations; a request
is refused when spent + held + its worst case would pass the limit. The state starts from
the ledger's booked usage of the key, so losing it (a Redis restart) forgets at most the
few seconds of usage not yet booked.
"""

import threading

from django.conf import settings
from django.db.models import Sum

from console.redis import get_redis

from .models import UsageRecord
from .money import to_units

RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local v = redis.call('HMGET', KEYS[1], 'spent', 'held')
if tonumber(v[1]) + tonumber(v[2]) + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'h:' .. ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'held', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local held = redis.call('HGET', KEYS[1], 'h:' .. ARGV[1])
if held then
  redis.call('HDEL', KEYS[1], 'h:' .. ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'held', '-' .. held)
end
if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2]) end
return 1
"""


def state_ttl_seconds() -> int:
    # Idle keys' state expires; it is rebuilt from the ledger on their next request.
    return settings.BILLING_RESERVATION_TTL_SECONDS * 24


def booked_spend(key_id: int) -> int:
    total = UsageRecord.objects.filter(api_key_id=key_id).aggregate(total=Sum("cost"))["total"]
    return to_units(total) if total else 0


class RedisBudgets:
    def __init__(self, client, prefix: str):
        self.redis = client
        self.prefix = prefix
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)

    def key(self, key_id: int) -> str:
        return f"{self.prefix}:keyspend:{key_id}"

    def start(self, key_id: int) -> None:
        """First use (or state lost): start from what the ledger has booked for the key."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(self.key(key_id), "spent", booked_spend(key_id))
        pipe.hsetnx(self.key(key_id), "held", 0)
        pipe.execute()

    def reserve(self, key_id: int, request_id: str, amount: int, limit: int) -> bool:
        args = [request_id, amount, limit, state_ttl_seconds()]
        result = self._reserve(keys=[self.key(key_id)], args=args)
        if result is None:
            self.start(key_id)
            result = self._reserve(keys=[self.key(key_id)], args=args)
        return bool(result)

    def settle(self, key_id: int, request_id: str, cost: int) -> None:
        self._settle(keys=[self.key(key_id)], args=[request_id, cost])


class LocalBudgets:
    def __init__(self):
        self._lock = threading.Lock()
        self._keys: dict[int, dict] = {}

    def reserve(self, key_id, request_id, amount, limit):
        if key_id not in self._keys:
            spent = booked_spend(key_id)
            with self._lock:
                self._keys.setdefault(key_id, {"spent": spent, "held": 0, "holds": {}})
        with self._lock:
            state = self._keys[key_id]
            if state["spent"] + state["held"] + amount > limit:
                return False
            state["holds"][request_id] = amount
            state["held"] += amount
            return True

    def settle(self, key_id, request_id, cost):
        with self._lock:
            state = self._keys.get(key_id)
            if state is not None:
                state["held"] -= state["holds"].pop(request_id, 0)
                state["spent"] += cost


_budgets = None


def budgets():
    global _budgets
    if _budgets is None:
        _budgets = RedisBudgets(get_redis(), settings.BILLING_REDIS_PREFIX) if settings.REDIS_URL else LocalBudgets()
    return _budgets


def reset_budgets() -> None:
    global _budgets
    _budgets = None
