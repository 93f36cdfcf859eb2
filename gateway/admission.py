"""Admitting a request and settling it: the key's rate window, its spend limit and the
organization's balance, checked and held together.

With Redis, admitting is one script and settling another, so a request costs two round
trips however many limits its key has. The scripts work on the state of the pieces they
stand for, with the same semantics and key names: gateway.limits (the key's minute),
billing.key_budgets (the key's spend) and billing.reservations (the balance, its holds and
the usage events). Those modules' own functions, the expiry sweep and the reconcile worker
therefore keep working on what the scripts write. The embedded default (no Redis) calls
the pieces in turn and undoes what it took when a later one refuses.
"""

import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from billing import charging
from billing.key_budgets import budgets, state_ttl_seconds
from billing.money import from_units, to_units
from billing.reservations import AccountNotLoaded, RedisStore, Snapshot, get_store

from . import encoding
from .limits import WINDOW_SECONDS, LimitState, limiter, window_keys

# Clears the request's hold in a hash of billing.key_budgets or billing.reservations.
UNHOLD = """
local function unhold(key, request_id)
  local held = redis.call('HGET', key, 'h:' .. request_id)
  if held then
    redis.call('HDEL', key, 'h:' .. request_id)
    redis.call('HINCRBY', key, 'held', '-' .. held)
  end
end
"""

# KEYS: the minute's requests and tokens, the key's spend, the account, the holds.
# ARGV: rpm, tpm (0: no limit), window ms, request id, amount, spend limit ('': none),
#       spend state ttl, hold expiry, hold member.
# Every check runs before the first write, so a refused request leaves no trace; the
# checks are in the order callers saw before: rate limits, spend limit, balance. Amounts
# stay strings changed only by HINCRBY; the comparisons use doubles (Lua has no other
# numbers), and Python repeats the balance check exactly on the values returned.
ADMIT = """
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate_limited = rpm > 0 or tpm > 0
local requests, tokens, ttl = 0, 0, 0
if rate_limited then
  requests = tonumber(redis.call('GET', KEYS[1]) or '0')
  tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
  ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = tonumber(ARGV[3]) end
  if (rpm > 0 and requests >= rpm) or (tpm > 0 and tokens >= tpm) then
    return {'rate', requests, tokens, ttl}
  end
end
local spend_limited = ARGV[6] ~= ''
local spend_missing = spend_limited and redis.call('EXISTS', KEYS[3]) == 0
local account_missing = redis.call('EXISTS', KEYS[4]) == 0
if spend_missing or account_missing then
  return {'unloaded', spend_missing and 1 or 0, account_missing and 1 or 0}
end
if spend_limited then
  local s = redis.call('HMGET', KEYS[3], 'spent', 'held')
  if tonumber(s[1]) + tonumber(s[2]) + tonumber(ARGV[5]) > tonumber(ARGV[6]) then return {'spend'} end
end
local v = redis.call('HMGET', KEYS[4], 'balance', 'limit', 'pending', 'held')
if tonumber(v[1]) + tonumber(v[2]) - tonumber(v[3]) - tonumber(v[4]) < tonumber(ARGV[5]) then
  return {'balance', v[1], v[2], v[3], v[4]}
end
if rate_limited then
  requests = redis.call('INCR', KEYS[1])
  if requests == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
if spend_limited then
  redis.call('HSET', KEYS[3], 'h:' .. ARGV[4], ARGV[5])
  redis.call('HINCRBY', KEYS[3], 'held', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[7])
end
redis.call('HSET', KEYS[4], 'h:' .. ARGV[4], ARGV[5])
redis.call('HINCRBY', KEYS[4], 'held', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[8], ARGV[9])
return {'ok', requests, tokens, ttl, v[1], v[2], v[3], v[4]}
"""

# Takes back what ADMIT wrote, for a request the exact balance check refused after all.
# KEYS as ADMIT. ARGV: request id, 1 if the window counted it, hold member.
UNADMIT = UNHOLD + """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
unhold(KEYS[3], ARGV[1])
unhold(KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[3])
return 1
"""

# KEYS: the account, the holds, the usage events, the key's spend, the minute's tokens.
# ARGV: request id, cost, usage event JSON, hold member, 1 if the key has a spend limit,
#       tokens to count (0: none), window ms.
# The embedded default does the same in process: LocalStore.settle, LocalBudgets.settle.
SETTLE = UNHOLD + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  unhold(KEYS[1], ARGV[1])
  if ARGV[2] ~= '0' then
    redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[1], 'pending', ARGV[2])
  end
end
redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  unhold(KEYS[4], ARGV[1])
  if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[4], 'spent', ARGV[2]) end
end
if ARGV[6] ~= '0' then
  redis.call('INCRBY', KEYS[5], ARGV[6])
  if redis.call('PTTL', KEYS[5]) < 0 then redis.call('PEXPIRE', KEYS[5], ARGV[7]) end
end
return redis.call('HMGET', KEYS[1], 'balance', 'pending')
"""


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


def admit(key, request_id: str, amount: Decimal) -> Admitted:
    """Count the request in the key's rate window and hold `amount` of the key's spend
    limit and of the organization's balance: all of it, or nothing and an exception
    (RateLimited, charging.KeySpendLimitReached, charging.InsufficientBalance)."""
    store = get_store()
    if isinstance(store, RedisStore):
        return _redis_admission(store).admit(key, request_id, amount)
    return _admit_locally(key, request_id, amount)


def settle(key, event_fields: dict, prices: charging.Prices, tokens: int) -> tuple[Decimal, Decimal | None]:
    """Turn the request's holds into its real cost, queue its usage event and count its
    tokens in the key's window. Returns the cost and the balance once that cost is booked
    (None if unknown)."""
    store = get_store()
    if isinstance(store, RedisStore):
        return _redis_admission(store).settle(key, event_fields, prices, tokens)
    return _settle_locally(key, event_fields, prices, tokens)


class RedisAdmission:
    def __init__(self, store: RedisStore):
        self.store = store
        self._admit = store.redis.register_script(ADMIT)
        self._unadmit = store.redis.register_script(UNADMIT)
        self._settle = store.redis.register_script(SETTLE)

    def _admit_keys(self, key) -> list[str]:
        return [*window_keys(self.store.prefix, key.key_id), budgets().key(key.key_id),
                self.store.account_key(key.organization_id), self.store.holds]

    def admit(self, key, request_id: str, amount: Decimal) -> Admitted:
        units = to_units(amount)
        keys = self._admit_keys(key)
        member = self.store.hold_member(key.organization_id, request_id)
        args = [key.rpm_limit or 0, key.tpm_limit or 0, WINDOW_SECONDS * 1000, request_id, units,
                "" if key.spend_limit is None else to_units(key.spend_limit), state_ttl_seconds(),
                time.time() + settings.BILLING_RESERVATION_TTL_SECONDS, member]
        outcome, *values = self._admit(keys=keys, args=args)
        if outcome == "unloaded":
            # First use of the key or the organization, or Redis lost them: start both from
            # the ledger, then ask once more.
            spend_missing, account_missing = values
            if spend_missing:
                budgets().start(key.key_id)
            if account_missing:
                charging.load_account(self.store, key.organization_id)
            outcome, *values = self._admit(keys=keys, args=args)
            if outcome == "unloaded":
                if values[0]:
                    raise charging.KeySpendLimitReached()
                raise AccountNotLoaded(key.organization_id)
        if outcome == "rate":
            raise RateLimited(_window(False, *values))
        if outcome == "spend":
            raise charging.KeySpendLimitReached()
        snapshot = Snapshot(*(int(v) for v in values[-4:]))
        if outcome == "ok" and snapshot.available < units:
            # The script compared doubles; the exact check disagrees only within a few
            # picodollars at balances above 9,000 USD, and then we refuse to be safe.
            counted = 1 if key.rpm_limit or key.tpm_limit else 0
            self._unadmit(keys=keys, args=[request_id, counted, member])
            outcome = "balance"
        if outcome == "balance":
            raise charging.InsufficientBalance(from_units(snapshot.available), amount)
        window = _window(True, *values[:3]) if key.rpm_limit or key.tpm_limit else None
        return Admitted(window, from_units(snapshot.balance - snapshot.pending))

    def settle(self, key, event_fields: dict, prices: charging.Prices, tokens: int):
        cost, event = charging.usage_event(event_fields, prices)
        org_id, request_id = event["organization_id"], event["request_id"]
        _, tokens_key = window_keys(self.store.prefix, key.key_id)
        balance, pending = self._settle(
            keys=[self.store.account_key(org_id), self.store.holds, self.store.stream, budgets().key(key.key_id),
                  tokens_key],
            args=[request_id, to_units(cost), encoding.dumps(event), self.store.hold_member(org_id, request_id),
                  1 if key.spend_limit is not None else 0, tokens if key.tpm_limit else 0,
                  WINDOW_SECONDS * 1000],
        )
        return cost, (from_units(int(balance) - int(pending)) if balance is not None else None)


def _window(allowed: bool, requests, tokens, ttl_ms) -> LimitState:
    return LimitState(allowed, int(requests), int(tokens), int(ttl_ms) / 1000)


_redis: RedisAdmission | None = None


def _redis_admission(store: RedisStore) -> RedisAdmission:
    global _redis
    if _redis is None or _redis.store is not store:  # the store is made anew after a fork
        _redis = RedisAdmission(store)
    return _redis


def _admit_locally(key, request_id: str, amount: Decimal) -> Admitted:
    window, spend_held = None, False
    try:
        if key.rpm_limit or key.tpm_limit:
            window = limiter().take(key.key_id, key.rpm_limit, key.tpm_limit)
            if not window.allowed:
                raise RateLimited(window)
        if key.spend_limit is not None:
            charging.reserve_key_spend(key.key_id, request_id, amount, key.spend_limit)
            spend_held = True
        snapshot = charging.reserve(key.organization_id, request_id, amount)
    except BaseException:
        # As with the Redis script, a refused request must leave no trace.
        if spend_held:
            charging.settle_key_spend(key.key_id, request_id, Decimal(0))
        if window is not None and window.allowed:
            limiter().give_back(key.key_id)
        raise
    return Admitted(window, from_units(snapshot.balance - snapshot.pending))


def _settle_locally(key, event_fields: dict, prices: charging.Prices, tokens: int):
    cost, balance = charging.settle(event_fields, prices)
    if key.spend_limit is not None:
        charging.settle_key_spend(key.key_id, event_fields["request_id"], cost)
    if key.tpm_limit and tokens:
        limiter().add_tokens(key.key_id, tokens)
    return cost, balance
