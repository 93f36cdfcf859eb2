"""Per-key spend limits: what a key has spent in all, kept live next to the balances.

A key's state is its all-time spend (settled costs) and its open reservations; a request
is refused when spent + held + its worst case would pass the limit. The state starts from
the ledger's booked usage of the key, so losing it (a Redis restart) forgets at most the
few seconds of usage not yet booked.
"""

import threading

from django.conf import settings
from django.db.models import Sum

from billing.redis_pool import get_redis

from .models import UsageRecord
from .money import to_units

def state_ttl_seconds() -> int:
    # Idle keys' state expires; it is rebuilt from the ledger on their next request.
    return settings.BILLING_RESERVATION_TTL_SECONDS * 24


def booked_spend(key_id: int) -> int:
    total = UsageRecord.objects.filter(api_key_id=key_id).aggregate(total=Sum("cost"))["total"]
    return to_units(total) if total else 0


class RedisBudgets:
    """Where a key's spend lives in Redis; gateway.admission's scripts hold and settle it."""

    def __init__(self, client, prefix: str):
        self.redis = client
        self.prefix = prefix

    def key(self, key_id: int) -> str:
        return f"{self.prefix}:keyspend:{key_id}"

    def start(self, key_id: int) -> None:
        """First use (or state lost): start from what the ledger has booked for the key."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(self.key(key_id), "spent", booked_spend(key_id))
        pipe.hsetnx(self.key(key_id), "held", 0)
        pipe.execute()


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
