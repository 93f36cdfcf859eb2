"""Per-key rate limits: requests and tokens per minute, shared by every process through
Redis (in process memory in the embedded default).

A key's minute starts with its first request and lasts 60 seconds, so "60 RPM" means at
most 60 requests in any window that starts when the limit is first touched. Tokens are
counted when a request settles; a request is refused once the minute's tokens are spent.
"""

import threading
import time
from dataclasses import dataclass

from .errors import GatewayError

WINDOW_SECONDS = 60


def window_keys(prefix: str, key_id: int) -> tuple[str, str]:
    """The Redis counters of a key's minute: requests, tokens. gateway.admission counts
    and checks them in the same scripts that hold the request's money."""
    return f"{prefix}:rl:{key_id}:r", f"{prefix}:rl:{key_id}:t"


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

    def give_back(self, key_id):
        """Uncount a request taken but then refused for its money, as the Redis script
        never counts one."""
        with self._lock:
            window = self._windows.get(key_id)
            if window is not None and window[0] > time.monotonic() and window[1] > 0:
                window[1] -= 1

    def add_tokens(self, key_id, tokens):
        with self._lock:
            self._window(key_id, time.monotonic())[2] += tokens


_limiter = None


def limiter() -> LocalLimiter:
    """The embedded default's windows, in process memory; with Redis they live in Redis
    and only gateway.admission touches them."""
    global _limiter
    if _limiter is None:
        _limiter = LocalLimiter()
    return _limiter


def reset_limiter() -> None:
    global _limiter
    _limiter = None


def rate_limit_error(key, state: LimitState) -> GatewayError:
    """429 rate_limit_exceeded for a request the key's window refused, with retry-after."""
    by_requests = key.rpm_limit and state.requests >= key.rpm_limit
    retry = max(1, round(state.reset_seconds + 0.5))
    return GatewayError(
        f"Rate limit reached for this API key: {key.rpm_limit} requests per minute." if by_requests else
        f"Rate limit reached for this API key: {key.tpm_limit} tokens per minute.",
        status=429, error_type="requests" if by_requests else "tokens", code="rate_limit_exceeded",
        headers={**headers_for(key.rpm_limit, key.tpm_limit, state), "retry-after": str(retry)},
    )
