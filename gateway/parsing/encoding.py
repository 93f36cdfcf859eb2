"""JSON in and out of the gateway, parsed and written once per body.

orjson does both several times faster than the standard library (an embedding answer ten
times faster); the standard library takes over for the rare values orjson refuses, so no
input that parsed before fails now. Costs are exact decimals, so they are written as JSON
numbers with their exact digits instead of going through a float.
"""

import json
from decimal import Decimal

import orjson

from billing.money import usd

_COST_PLACEHOLDER = "\x00mg-cost\x00"
_COST_TOKEN = orjson.dumps(_COST_PLACEHOLDER)


def dumps(payload) -> bytes:
    """`payload` as compact JSON bytes (UTF-8)."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # an integer past 64 bits, a non-string key, a lone surrogate
        return json.dumps(payload, separators=(",", ":")).encode()


def loads(data: bytes):
    """JSON bytes parsed; ValueError when they are not JSON.

    orjson turns an integer past 64 bits into a float; no field the gateway reads (token
    counts, ids, timestamps) comes near that."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN, a number past a double's range, a lone surrogate
        return json.loads(data)


def encode(payload: dict, usage_cost: Decimal | None = None) -> bytes:
    """`payload` as compact JSON; with usage_cost, payload["usage"]["cost"] carries it."""
    if usage_cost is not None and isinstance(payload.get("usage"), dict):
        payload["usage"]["cost"] = _COST_PLACEHOLDER
        data = dumps(payload)
        payload["usage"]["cost"] = cost = usd(usage_cost)
        return data.replace(_COST_TOKEN, cost.encode(), 1)
    return dumps(payload)
