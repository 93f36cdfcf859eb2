"""Per-key rate limits in OpenAI's terms: the headers and the 429 for a key's window.

The window itself (requests and tokens per minute, shared by every process) is kept and
checked by billing.live with the request's money: a key's minute starts with its first
request and lasts 60 seconds, so "60 RPM" means at most 60 requests in any window that
starts when the limit is first touched. Tokens are counted when a request settles; a
request is refused once the minute's tokens are spent.
"""

from billing.live import WINDOW_SECONDS, LimitState  # noqa: F401  (the gateway's names for them)

from ..api.errors import GatewayError


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
