"""The Lua scripts of the live store (billing.live), the only code that changes live money.

Redis runs each script atomically, so every step below is all or nothing across all web
processes; the embedded default runs the very same text on an in-process Redis.

Amounts travel as strings of integer picodollars and change only through HINCRBY, which
is exact on 64-bit integers: Lua numbers are doubles. The one comparison of amounts made
with doubles (the balance check in ADMIT) is repeated exactly in Python on the values the
script returns (billing.live.Snapshot).

Hashes: an account (balance, head, limit, pending, held, h:<request> holds, p:<request>
pending costs) and a key's spend (spent, held, h:<request> holds, and the budget period
its spent counts: billing.budget_periods.period_id). A request's holds are
also in one sorted set scored by expiry, so abandoned ones can be swept.

Beside its holds, an admitted request leaves an intent (billing.abandoned): what to book
if its web process dies before settling, in a hash by request id and a sorted set scored
by admission time. Settling or releasing takes it away; the sweep books an intent left
too long as an "abandoned" usage event, through SETTLE itself, and leaves a tombstone so
that a settlement arriving after all changes nothing: one event per request, either way.
"""

# Gives back the hold a request has in a hash; returns the amount, or false if none.
_UNHOLD = """
local function unhold(hash, request_id)
  local held = redis.call('HGET', hash, 'h:' .. request_id)
  if held then
    redis.call('HDEL', hash, 'h:' .. request_id)
    if held ~= '0' then redis.call('HINCRBY', hash, 'held', '-' .. held) end
  end
  return held
end
"""

# KEYS: the minute's requests and tokens, the key's spend, the account, the holds, the
#       intents by time, the intents.
# ARGV: rpm, tpm (0: no limit), window ms, request id, amount, spend limit ('': none),
#       key spend ttl seconds, hold expiry (unix seconds), hold member, intent JSON
#       ('': none), now (unix seconds), the key's budget period now (its id).
# A key's spend counted for another period than now's is as good as missing: Python
# starts it again from the ledger (START_SPEND) and asks once more.
# Every check runs before the first write, so a refused request leaves no trace. Checks
# in order: rate window, spend limit, balance.
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
local spend_missing = spend_limited and redis.call('HGET', KEYS[3], 'period') ~= ARGV[12]
local v = redis.call('HMGET', KEYS[4], 'balance', 'limit', 'pending', 'held')
if spend_missing or not v[1] then
  return {'unloaded', spend_missing and 1 or 0, v[1] and 0 or 1}
end
if spend_limited then
  local s = redis.call('HMGET', KEYS[3], 'spent', 'held')
  if tonumber(s[1]) + tonumber(s[2]) + tonumber(ARGV[5]) > tonumber(ARGV[6]) then return {'spend'} end
end
-- The available-balance rule: what a new request may still hold.
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
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[7], ARGV[4], ARGV[10])
  redis.call('ZADD', KEYS[6], ARGV[11], ARGV[4])
end
return {'ok', requests, tokens, ttl, v[1], v[2], v[3], v[4]}
"""

# Takes back what ADMIT wrote, for a request the exact balance check refused after all.
# KEYS as ADMIT. ARGV: request id, 1 if the window counted it, hold member.
UNADMIT = _UNHOLD + """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
unhold(KEYS[3], ARGV[1])
unhold(KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[3])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
"""

# Turns a request's holds into its cost and queues its usage event for booking; returns
# the account's balance and pending, and 'settled', or 'abandoned' (the sweep booked the
# request already: nothing changes) or 'gone' (abandoning a request that has settled).
# KEYS: the account, the holds, the usage events, the key's spend, the minute's tokens,
#       the intents by time, the intents, the request's tombstone.
# ARGV: request id, cost, usage event JSON, hold member, 1 if the key has a spend limit,
#       tokens to count (0: none), window ms, 'settle' or 'abandon', tombstone ttl seconds.
SETTLE = _UNHOLD + """
if ARGV[8] == 'abandon' then
  if redis.call('HEXISTS', KEYS[7], ARGV[1]) == 0 then return {false, false, 'gone'} end
  redis.call('SET', KEYS[8], '1', 'EX', ARGV[9])
elseif redis.call('EXISTS', KEYS[8]) == 1 then
  return {false, false, 'abandoned'}
end
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  unhold(KEYS[1], ARGV[1])
  if ARGV[2] ~= '0' then
    redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], ARGV[2])
    redis.call('HINCRBY', KEYS[1], 'pending', ARGV[2])
  end
end
redis.call('XADD', KEYS[3], '*', 'e', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
-- Only a request held in the key's current spend counts there: one admitted in a period
-- that has ended since (its counter started anew without the hold) counts in that one.
if ARGV[5] == '1' and unhold(KEYS[4], ARGV[1]) and ARGV[2] ~= '0' then
  redis.call('HINCRBY', KEYS[4], 'spent', ARGV[2])
end
if ARGV[6] ~= '0' then
  redis.call('INCRBY', KEYS[5], ARGV[6])
  if redis.call('PTTL', KEYS[5]) < 0 then redis.call('PEXPIRE', KEYS[5], ARGV[7]) end
end
local v = redis.call('HMGET', KEYS[1], 'balance', 'pending')
return {v[1], v[2], 'settled'}
"""

# Starts a key's spend for a budget period from what the ledger booked in it, unless
# another process just did, or already started a later period of the same kind (its clock
# is ahead: the counter never goes back, or two clocks would reset it in turn); returns
# the period the counter is for now. Holds of an ended period go with the old counter.
# KEYS: the key's spend. ARGV: the period id ("daily:<start>", "all"), booked spend, ttl.
START_SPEND = """
local current = redis.call('HGET', KEYS[1], 'period')
if current == ARGV[1] then return current end
if current then
  local kind, start = string.match(current, '^(%a+):(%d+)$')
  local wanted_kind, wanted_start = string.match(ARGV[1], '^(%a+):(%d+)$')
  if kind and kind == wanted_kind and tonumber(start) > tonumber(wanted_start) then return current end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'period', ARGV[1], 'spent', ARGV[2], 'held', 0)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ARGV[1]
"""

# Gives back a request's holds without queuing anything: an abandoned request (the expiry
# sweep, cost 0) or one whose settlement the outbox booked (its cost, counted in the key's
# spend only if its settlement never reached the store, i.e. the key's hold is still open).
# KEYS: the account, the holds, the key's spend, the intents by time, the intents.
# ARGV: request id, hold member, cost.
RELEASE = _UNHOLD + """
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local held = unhold(KEYS[1], ARGV[1])
if unhold(KEYS[3], ARGV[1]) and ARGV[3] ~= '0' then redis.call('HINCRBY', KEYS[3], 'spent', ARGV[3]) end
redis.call('ZREM', KEYS[2], ARGV[2])
return held and 1 or 0
"""

# Brings an account up to the ledger: starts it if missing; takes booked requests out of
# pending; moves the balance only forward (a newer ledger head), so a stale publisher can
# never undo a newer one. KEYS: the account. ARGV: head, balance, limit, booked request ids...
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
