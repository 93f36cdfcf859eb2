"""What the gateway calls on the request path: reserve before forwarding, settle after.
(gateway.admission does both together with the key's limits, in one Redis round trip
each way, and uses these functions for the rest.)

Neither writes to the database. Reserving reads the account from the database only the
first time a process (or Redis) has no state for the organization.
"""

import logging
import time
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from .key_budgets import budgets
from .models import Account
from .money import ceil_to_unit, from_units, to_units, token_cost
from .reservations import AccountNotLoaded, LocalStore, get_store

log = logging.getLogger("mixgateway.billing")


class InsufficientBalance(Exception):
    def __init__(self, available: Decimal, needed: Decimal):
        super().__init__(f"available {available} USD, needed {needed} USD")
        self.available = available
        self.needed = needed


@dataclass(frozen=True)
class Prices:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None


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


def worst_case_cost(prompt_tokens_bound: int, output_tokens_bound: int, prices: Prices) -> Decimal:
    return ceil_to_unit(token_cost(prompt_tokens_bound, output_tokens_bound, prices.input_per_mtok,
                                   prices.output_per_mtok))


# The event's fields in UsageEvent's order, so the JSON stays byte for byte what it was.
EVENT_FIELDS = tuple(f.name for f in fields(UsageEvent))


def load_account(store, organization_id: int) -> None:
    """Start the store's state for the organization from the ledger."""
    account = Account.objects.filter(organization_id=organization_id).first()
    if account is None:
        store.load(organization_id, 0, 0, 0)
    else:
        store.load(organization_id, account.ledger_head, to_units(account.balance), to_units(account.credit_limit))


def reserve(organization_id: int, request_id: str, amount: Decimal):
    """Hold `amount` of the organization's available balance, or raise InsufficientBalance.
    Returns the account's Snapshot from just before the hold."""
    store = get_store()
    if isinstance(store, LocalStore):
        # In the embedded default other processes (the credit command) write the ledger,
        # so the in-process copy is refreshed from it every few seconds.
        loaded = store.loaded_at(organization_id)
        if loaded is None or time.monotonic() - loaded > settings.GATEWAY_CACHE_SECONDS:
            load_account(store, organization_id)
    units = to_units(amount)
    try:
        ok, snapshot = store.reserve(organization_id, request_id, units, settings.BILLING_RESERVATION_TTL_SECONDS)
    except AccountNotLoaded:
        load_account(store, organization_id)
        ok, snapshot = store.reserve(organization_id, request_id, units, settings.BILLING_RESERVATION_TTL_SECONDS)
    if not ok:
        raise InsufficientBalance(from_units(snapshot.available), amount)
    return snapshot


class KeySpendLimitReached(Exception):
    pass


def reserve_key_spend(key_id: int, request_id: str, amount: Decimal, limit: Decimal) -> None:
    """Hold `amount` of the key's spend limit, or raise KeySpendLimitReached."""
    if not budgets().reserve(key_id, request_id, to_units(amount), to_units(limit)):
        raise KeySpendLimitReached()


def settle_key_spend(key_id: int, request_id: str, cost: Decimal) -> None:
    budgets().settle(key_id, request_id, to_units(cost))


def release(organization_id: int, request_id: str) -> None:
    get_store().release(organization_id, request_id)


def usage_event(event_fields: dict, prices: Prices) -> tuple[Decimal, dict]:
    """The request's exact cost and its usage event (UsageEvent's fields, as a plain dict:
    this runs once per request, and dataclasses.asdict deep-copies)."""
    cost = token_cost(event_fields["prompt_tokens"], event_fields["completion_tokens"], prices.input_per_mtok,
                      prices.output_per_mtok, event_fields["cached_tokens"], prices.cached_input_per_mtok)
    priced = {
        **event_fields,
        "input_per_mtok": str(prices.input_per_mtok),
        "output_per_mtok": str(prices.output_per_mtok),
        "cached_input_per_mtok": None if prices.cached_input_per_mtok is None else str(prices.cached_input_per_mtok),
        "cost": str(cost),
    }
    return cost, {name: priced[name] for name in EVENT_FIELDS}


def settle(event_fields: dict, prices: Prices) -> tuple[Decimal, Decimal | None]:
    """Turn the reservation into the real cost and queue the usage event for booking, in
    the embedded store (with Redis, gateway.admission settles in one script). Returns the
    cost and the balance once this cost is booked (None if unknown)."""
    cost, event = usage_event(event_fields, prices)
    store = get_store()
    balance = store.settle(event["organization_id"], event["request_id"], to_units(cost), event)
    if isinstance(store, LocalStore):
        from .tasks import reconcile_usage

        reconcile_usage.delay()  # the embedded default books in-process, right away
    return cost, (from_units(balance) if balance is not None else None)


def event_time(event: dict) -> datetime:
    return datetime.fromisoformat(event["started_at"])
