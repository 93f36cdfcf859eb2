"""Per-key rate limits: requests and tokens per minute, shared by every process through
Redis (in process memory in the embedded default).

A key's minute starts with its first request and lasts 60 seconds, so "60 RPM" means at
most 60 requests in any window that starts when the limit is first touched. Tokens are
counted when a request settles; a request is refused once the minute's tokens are spent.
"""

import threading
import time
from dataclasses import dataclass

from django.conf import settings

from console.redis import get_redis

from .errors import GatewayError

WINDOW_SECONDS = 60

# Count a request and read the minute's tokens in one atomic step; a refused request
# does not count against the window.
TAKE = """
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[3]) end
if (tonumber(ARGV[1]) > 0 and requests >= tonumber(ARGV[1])) or (tonumber(ARGV[2]) > 0 and tokens >= tonumber(ARGV[2])) then
  return {0, requests, tokens, ttl}
end
requests = redis.call('INCR', KEYS[1])
if requests == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, requests, tokens, ttl}
"""

ADD_TOKENS = """
local tokens = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return tokens
"""


@dataclass(frozen=True)
class LimitState:
    allowed: bool
    requests: int
    tokens: int
    reset_seconds: float


def _reset(seconds: float) -> str:
    """OpenAI's reset format: "1s", "6m0s", "59.5s"."""
    seconds = max(seconds, 0)
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s" if minutes else f"{rest:.3g}s"


def headers_for(rpm: int | None, tpm: int | None, state: LimitState) -> dict:
    headers = {}
    if rpm:
        headers.update({"x-ratelimit-limit-requests": str(rpm),
                        "x-ratelimit-remaining-requests": str(max(rpm - state.requests, 0)),
                        "x-ratelimit-reset-requests": _reset(state.reset_seconds)})
    if tpm:
        headers.update({"x-ratelimit-limit-tokens": str(tpm),
                        "x-ratelimit-remaining-tokens": str(max(tpm - state.tokens, 0)),
                        "x-ratelimit-reset-tokens": _reset(state.reset_seconds)})
    return headers


class RedisLimiter:
    def __init__(self, client, prefix: str):
        self.redis = client
        self.prefix = prefix
        self._take = client.register_script(TAKE)
        self._add = client.register_script(ADD_TOKENS)

    def take(self, key_id: int, rpm: int, tpm: int) -> LimitState:
        ok, requests, tokens, ttl_ms = self._take(
            keys=[f"{self.prefix}:rl:{key_id}:r", f"{self.prefix}:rl:{key_id}:t"],
            args=[rpm or 0, tpm or 0, WINDOW_SECONDS * 1000],
        )
        return LimitState(bool(ok), int(requests), int(tokens), int(ttl_ms) / 1000)

    def add_tokens(self, key_id: int, tokens: int) -> None:
        self._add(keys=[f"{self.prefix}:rl:{key_id}:t"], args=[tokens, WINDOW_SECONDS * 1000])


class LocalLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[int, list] = {}  # key id -> [window end, requests, tokens]

    def _window(self, key_id: int, now: float) -> list:
        window = self._windows.get(key_id)
        if window is None or window[0] <= now:
            window = self._windows[key_id] = [now + WINDOW_SECONDS, 0, 0]
        return window

    def take(self, key_id, rpm, tpm):
        with self._lock:
            now = time.monotonic()
            window = self._window(key_id, now)
            if (rpm and window[1] >= rpm) or (tpm and window[2] >= tpm):
                return LimitState(False, window[1], window[2], window[0] - now)
            window[1] += 1
            return LimitState(True, window[1], window[2], window[0] - now)

    def add_tokens(self, key_id, tokens):
        with self._lock:
            self._window(key_id, time.monotonic())[2] += tokens


_limiter = None


def limiter():
    global _limiter
    if _limiter is None:
        _limiter = RedisLimiter(get_redis(), settings.BILLING_REDIS_PREFIX) if settings.REDIS_URL else LocalLimiter()
    return _limiter


def reset_limiter() -> None:
    global _limiter
    _limiter = None


def check_rate_limits(key) -> dict:
    """Count this request against the key's limits; returns the headers to send, or raises
    429 rate_limit_exceeded with retry-after."""
    if not key.rpm_limit and not key.tpm_limit:
        return {}
    state = limiter().take(key.key_id, key.rpm_limit, key.tpm_limit)
    headers = headers_for(key.rpm_limit, key.tpm_limit, state)
    if not state.allowed:
        by_requests = key.rpm_limit and state.requests >= key.rpm_limit
        retry = max(1, round(state.reset_seconds + 0.5))
        raise GatewayError(
            f"Rate limit reached for this API key: {key.rpm_limit} requests per minute." if by_requests else
            f"Rate limit reached for this API key: {key.tpm_limit} tokens per minute.",
            status=429, error_type="requests" if by_requests else "tokens", code="rate_limit_exceeded",
            headers={**headers, "retry-after": str(retry)},
        )
    return headers


def count_tokens(key, tokens: int) -> None:
    if key.tpm_limit and tokens:
        limiter().add_tokens(key.key_id, tokens)
