"""JSON out of the gateway. Costs are exact decimals, so they are written as JSON numbers
with their exact digits instead of going through a float."""

import json
from decimal import Decimal

from billing.money import usd

_COST_PLACEHOLDER = "\x00mg-cost\x00"
_COST_TOKEN = json.dumps(_COST_PLACEHOLDER)


def encode(payload: dict, usage_cost: Decimal | None = None) -> bytes:
    """`payload` as compact JSON; with usage_cost, payload["usage"]["cost"] carries it."""
    if usage_cost is not None and isinstance(payload.get("usage"), dict):
        payload["usage"]["cost"] = _COST_PLACEHOLDER
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        payload["usage"]["cost"] = usd(usage_cost)
        return text.replace(_COST_TOKEN, usd(usage_cost), 1).encode()
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
