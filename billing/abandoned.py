"""Requests whose web process died before settling: what admission writes down so they are
still booked, and the usage event they are booked as.

A web worker killed mid-request (SIGKILL, out of memory) never reaches settlement, so its
request would end as a hold that expires and no charge, although an upstream may have
answered. Admission therefore writes an intent beside the hold, in the same script and
round trip (billing.live_scripts.ADMIT): the request, its key, the route it was sent to,
its prompt estimate and the route's prices (the sweep prices the estimate with the one cost
rule when it books). Settlement removes it.
An intent older than GATEWAY_ABANDONED_AFTER_SECONDS (longer than any upstream timeout)
belongs to a request nobody will settle: the sweep (billing.live.book_abandoned, run by
Celery beat) books it once, status "abandoned", charged the prompt estimate — the least
the upstream was certainly asked to read — and releases its holds.
"""

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from .charging import Prices, usage_event


def intent(request_id: str, organization_id: int, key_id: int, model_id: int | None, model: str, stream: bool,
           prompt_tokens: int, prices: Prices, started_at: datetime) -> str:
    """The intent of an admitted request, as the JSON the live store keeps."""
    input_price, output_price, cached_price, _ = prices.texts
    return orjson.dumps({
        "request_id": request_id, "organization_id": organization_id, "key_id": key_id, "model_id": model_id,
        "model": model, "stream": stream, "prompt_tokens": prompt_tokens,
        "input_per_mtok": input_price, "output_per_mtok": output_price, "cached_input_per_mtok": cached_price,
        # Unix seconds: a tenth of the cost of isoformat() on the hot path.
        "started_at": started_at.timestamp(),
    }).decode()


def abandoned_event(intent_json: str) -> tuple[Decimal, dict]:
    """The usage event an abandoned request is booked as, and its cost: the prompt
    estimate at the prices of its route, computed by the one cost rule."""
    kept = orjson.loads(intent_json)
    cached = kept["cached_input_per_mtok"]
    prices = Prices(Decimal(kept["input_per_mtok"]), Decimal(kept["output_per_mtok"]),
                    None if cached is None else Decimal(cached))
    return usage_event({
        "request_id": kept["request_id"], "organization_id": kept["organization_id"], "key_id": kept["key_id"],
        "model_id": kept["model_id"], "model": kept["model"], "stream": kept["stream"], "status": "abandoned",
        # No answer was finished: 0 says so (no HTTP status was ever completed).
        "http_status": 0, "error_code": None, "prompt_tokens": kept["prompt_tokens"], "completion_tokens": 0,
        "cached_tokens": 0, "reasoning_tokens": 0, "basis": "estimated",
        "started_at": datetime.fromtimestamp(kept["started_at"], UTC).isoformat(),
        "latency_ms": 0, "ttft_ms": None,
    }, prices)
