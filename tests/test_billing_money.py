"""Exact arithmetic and exactly-once booking."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.charging import Prices, UsageEvent
from billing.ledger import BillingError, parse_amount
from billing.models import Account, LedgerEntry, UsageRecord
from billing.money import InexactAmount, to_units, token_cost
from billing.reconcile import book, ledger_is_consistent

PRICES = Prices(Decimal("0.27"), Decimal("1.10"), None)


def test_the_design_example_costs_exactly():
    assert token_cost(8, 1, Decimal("0.27"), Decimal("1.10")) == Decimal("0.00000326")


def test_cached_tokens_use_the_cached_price():
    cost = token_cost(1000, 0, Decimal("0.27"), Decimal("1.10"), cached_tokens=600,
                      cached_input_per_mtok=Decimal("0.07"))
    assert cost == (400 * Decimal("0.27") + 600 * Decimal("0.07")) / 1_000_000


def test_cached_tokens_without_a_cached_price_cost_like_input():
    assert token_cost(1000, 0, Decimal("0.27"), Decimal("1.10"), cached_tokens=600) == Decimal("0.00027")


def test_amounts_are_never_rounded_silently():
    with pytest.raises(InexactAmount):
        to_units(Decimal("0.0000000000001"))
    with pytest.raises(BillingError):
        parse_amount("0.0000000000001")
    with pytest.raises(BillingError):
        parse_amount("-3")
    assert parse_amount("2.50") == Decimal("2.50")


def event(org_id: int, prompt: int, completion: int, request_id: str | None = None) -> dict:
    cost = token_cost(prompt, completion, PRICES.input_per_mtok, PRICES.output_per_mtok)
    return UsageEvent(
        request_id=request_id or str(uuid.uuid4()), organization_id=org_id, key_id=None, model_id=None,
        model="mock:ok", stream=False, status="completed", http_status=200, error_code=None,
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=0, reasoning_tokens=0,
        basis="provider", input_per_mtok="0.27", output_per_mtok="1.10", cached_input_per_mtok=None,
        cost=str(cost), started_at=datetime.now(UTC).isoformat(), latency_ms=5, ttft_ms=None,
    ).__dict__


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2_000_000), st.integers(0, 200_000)), min_size=1, max_size=30))
def test_usage_entries_sum_to_the_per_request_costs(org, tokens):
    before = Account.objects.get(organization=org).balance
    events = [event(org.pk, p, c) for p, c in tokens]
    book(events)
    book(events)  # a retried batch books nothing twice
    ids = [e["request_id"] for e in events]
    charged = sum((e.amount for e in LedgerEntry.objects.filter(reference__in=[f"usage:{i}" for i in ids])),
                  Decimal(0))
    expected = sum((Decimal(e["cost"]) for e in events), Decimal(0))
    assert -charged == expected
    assert sum(r.cost for r in UsageRecord.objects.filter(request_id__in=ids)) == expected
    assert Account.objects.get(organization=org).balance == before - expected
    assert ledger_is_consistent(org.pk)


@pytest.mark.django_db
def test_a_duplicate_inside_one_batch_is_booked_once(org):
    e = event(org.pk, 8, 1)
    book([e, dict(e)])
    assert LedgerEntry.objects.filter(reference=f"usage:{e['request_id']}").count() == 1
    assert Account.objects.get(organization=org).balance == Decimal("100") - Decimal("0.00000326")


@pytest.mark.django_db
def test_ledger_rows_cannot_change(org):
    from billing.models import ImmutableRow

    entry = LedgerEntry.objects.filter(account__organization=org).first()
    entry.note = "tampered"
    with pytest.raises(ImmutableRow):
        entry.save()
    with pytest.raises(ImmutableRow):
        entry.delete()
