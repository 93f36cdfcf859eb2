"""The vocabulary of charging a request: its prices, its cost, its usage event, and why
admission may refuse it. billing.live holds and settles the money itself.
"""

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from .money import PerToken, cost_in_usd, per_token, token_cost_units


class InsufficientBalance(Exception):
    def __init__(self, available: Decimal, needed: Decimal):
        super().__init__(f"available {available} USD, needed {needed} USD")
        self.available = available
        self.needed = needed


class KeySpendLimitReached(Exception):
    pass


@dataclass(frozen=True)
class Prices:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    cache_write_per_mtok: Decimal | None = None  # Anthropic's cache creation; None: the input price
    # Worked out once per model's prices (the catalog's routes keep theirs), not per request.
    per_token: PerToken = field(init=False, repr=False, compare=False)
    texts: tuple = field(init=False, repr=False, compare=False)  # as usage events and intents write them

    def __post_init__(self):
        object.__setattr__(self, "per_token", per_token(self.input_per_mtok, self.output_per_mtok,
                                                        self.cached_input_per_mtok, self.cache_write_per_mtok))
        object.__setattr__(self, "texts", tuple(None if price is None else str(price) for price in (
            self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok, self.cache_write_per_mtok)))


@dataclass(frozen=True)
class UsageEvent:
    """Everything the ledger needs to book one request, travelling as JSON to a worker."""

    request_id: str
    organization_id: int
    key_id: int
    model_id: int | None
    model: str  # the public "provider:modelId" that served the request
    stream: bool
    status: str  # completed | client_gone | upstream_error
    http_status: int
    error_code: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    basis: str  # provider | estimated | partial
    input_per_mtok: str
    output_per_mtok: str
    cached_input_per_mtok: str | None
    cost: str
    started_at: str
    latency_ms: int
    ttft_ms: int | None
    # Added after the first version: events queued before it have neither (0 and None).
    cache_write_tokens: int = 0
    cache_write_per_mtok: str | None = None


def cost_of(prices: Prices, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0,
            cache_write_tokens: int = 0) -> Decimal:
    """The exact cost of a request's tokens at its prices: the one formula behind the
    charge, the cost header and a stream's usage chunk (billing.money.token_cost_units says how
    each bucket is priced, and why a cache write without its own price costs the input price)."""
    return cost_in_usd(token_cost_units(prompt_tokens, completion_tokens, prices.per_token, cached_tokens,
                                        cache_write_tokens))


def worst_case_cost(prompt_tokens_bound: int, output_tokens_bound: int, prices: Prices) -> Decimal:
    return cost_of(prices, prompt_tokens_bound, output_tokens_bound)  # no token counted as cached


# The event's fields in UsageEvent's order, so the JSON stays byte for byte what it was.
EVENT_FIELDS = tuple(f.name for f in fields(UsageEvent))


def usage_event(event_fields: dict, prices: Prices) -> tuple[Decimal, dict]:
    """The request's exact cost and its usage event (UsageEvent's fields, as a plain dict:
    this runs once per request, and dataclasses.asdict deep-copies)."""
    cost = cost_of(prices, event_fields["prompt_tokens"], event_fields["completion_tokens"],
                   event_fields["cached_tokens"], event_fields.get("cache_write_tokens", 0))
    priced = {
        "cache_write_tokens": 0,
        **event_fields,
        "input_per_mtok": prices.texts[0],
        "output_per_mtok": prices.texts[1],
        "cached_input_per_mtok": prices.texts[2],
        "cache_write_per_mtok": prices.texts[3],
        "cost": str(cost),
    }
    return cost, {name: priced[name] for name in EVENT_FIELDS}


def event_time(event: dict) -> datetime:
    return datetime.fromisoformat(event["started_at"])
