"""One bad usage event never blocks booking: what the ledger's columns cannot take is
clamped, what it still refuses is quarantined, and every other event is booked."""

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import openai
import pytest

from billing import live
from billing.charging import UsageEvent
from billing.ledger import adjust, credit, set_credit_limit
from billing.models import Account, LedgerEntry, QuarantinedUsageEvent, UsageRecord
from billing.money import token_cost
from billing.quarantine import quarantine_key
from billing.reconcile import book, ledger_is_consistent, reconcile
from console.tenancy.actions import create_organization
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import OK_COST, booked
from tests.upstream_mock import HUGE_TOKENS, POISON_CODE

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = [{"role": "user", "content": "Say hello"}]
INT32_MAX = 2**31 - 1
# More than a money column (64-bit picodollars, about 9.2 million USD) can hold.
UNSTORABLE_COST = "10000000"


def usage_event(org, *, prompt=8, completion=3, cost=None, **fields) -> dict:
    """A usage event as the gateway queues it, at mock:ok's prices."""
    event = UsageEvent(
        request_id=f"req-{uuid.uuid4()}", organization_id=org.pk, key_id=None, model_id=None, model="mock:ok",
        stream=False, status="completed", http_status=200, error_code=None, prompt_tokens=prompt,
        completion_tokens=completion, cached_tokens=0, reasoning_tokens=0, basis="provider",
        input_per_mtok="0.27", output_per_mtok="1.10", cached_input_per_mtok=None,
        cost=cost or str(token_cost(prompt, completion, Decimal("0.27"), Decimal("1.10"))),
        started_at=datetime(2026, 1, 5, tzinfo=UTC).isoformat(), latency_ms=42, ttft_ms=None,
    ).__dict__
    return {**event, **fields}


@pytest.fixture
def orgs(org):
    others = [create_organization(name, f"owner@{name.lower()}.example") for name in ("Beta", "Gamma")]
    for other in others:
        credit(other.pk, Decimal("100"), note="test credit")
    return [org, *others]


def test_a_batch_with_poison_books_every_good_event(orgs):
    alpha, beta, gamma = orgs
    nul_code = usage_event(alpha, status="upstream_error", http_status=400, prompt=0, completion=0,
                           error_code="bad\x00code\ud800" + "z" * 190)
    huge = usage_event(beta, prompt=HUGE_TOKENS, completion=HUGE_TOKENS, cached_tokens=HUGE_TOKENS,
                       reasoning_tokens=2**70, latency_ms=2**40)
    unbookable = usage_event(gamma, cost=UNSTORABLE_COST)
    good = [usage_event(org) for org in orgs for _ in range(5)]
    batch = good[:7] + [nul_code] + good[7:11] + [huge, unbookable] + good[11:]

    touched = book(batch)

    for event in good:
        assert UsageRecord.objects.get(request_id=event["request_id"]).cost == OK_COST
    clamped = UsageRecord.objects.get(request_id=nul_code["request_id"])
    assert clamped.error_code == "badcode" + "z" * 57  # NUL and the lone surrogate gone, cut to 64
    assert clamped.http_status == 400 and clamped.status == UsageRecord.Status.UPSTREAM_ERROR
    counted = UsageRecord.objects.get(request_id=huge["request_id"])
    assert (counted.prompt_tokens, counted.completion_tokens) == (HUGE_TOKENS, HUGE_TOKENS)  # not clamped to 2^31-1
    assert counted.reasoning_tokens == 2**63 - 1 and counted.latency_ms == INT32_MAX
    assert counted.cost == Decimal(huge["cost"])  # what was charged, to the picodollar
    assert not UsageRecord.objects.filter(request_id=unbookable["request_id"]).exists()
    kept = QuarantinedUsageEvent.objects.get(request_id=unbookable["request_id"])
    assert kept.organization == gamma and kept.attempts == 1 and kept.replayed_at is None
    assert "out of range" in kept.error or "too large" in kept.error

    assert Account.objects.get(organization=alpha).balance == Decimal(100) - 5 * OK_COST
    assert Account.objects.get(organization=beta).balance == Decimal(100) - 5 * OK_COST - Decimal(huge["cost"])
    assert Account.objects.get(organization=gamma).balance == Decimal(100) - 5 * OK_COST
    assert all(ledger_is_consistent(org.pk) for org in orgs)
    # The quarantined request is settled too, so the live store stops holding its cost.
    assert unbookable["request_id"] in touched[gamma.pk][1]
    assert sorted(sum((ids for _, ids in touched.values()), [])) == sorted(e["request_id"] for e in batch)


def test_a_quarantined_event_delivered_again_is_kept_once(org):
    poison = usage_event(org, cost=UNSTORABLE_COST)
    book([poison])
    book([poison])  # the worker died before acknowledging it: the stream hands it out again
    kept = QuarantinedUsageEvent.objects.get()
    assert kept.attempts == 2 and kept.first_seen_at <= kept.last_seen_at
    assert not LedgerEntry.objects.filter(kind="usage").exists()
    assert ledger_is_consistent(org.pk)


def test_an_event_that_is_not_one_is_quarantined_under_a_digest(org):
    good = usage_event(org)
    nameless = usage_event(org, request_id="r" * 65)
    book([{"no": "request id"}, nameless, good])
    assert UsageRecord.objects.filter(request_id=good["request_id"]).exists()
    keys = set(QuarantinedUsageEvent.objects.values_list("request_id", flat=True))
    assert keys == {quarantine_key({"no": "request id"}), quarantine_key(nameless)}
    assert all(key.startswith("sha256:") for key in keys)


def test_an_event_of_a_deleted_key_or_model_books_without_them(org):
    key, _ = mint_api_key(org, name="gone")
    orphan = usage_event(org, key_id=key.pk + 1000, model_id=999_999)
    book([orphan])
    record = UsageRecord.objects.get(request_id=orphan["request_id"])
    assert record.api_key_id is None and record.catalog_model_id is None


def test_an_upstream_code_with_nul_from_the_real_request_path_is_booked(client, org):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="mock:fail-400-poison", messages=HELLO)
    assert refused.value.code == POISON_CODE  # the caller still sees what the upstream said
    answered = client.chat.completions.with_raw_response.create(model="mock:ok", messages=HELLO)
    record = booked(refused.value.response.headers["x-request-id"])
    assert record.error_code == POISON_CODE.replace("\x00", "")[:64]
    assert record.status == UsageRecord.Status.UPSTREAM_ERROR and record.http_status == 400
    assert booked(answered.headers["x-request-id"]).cost == OK_COST
    assert ledger_is_consistent(org.pk)


def quarantined(request_id: str, timeout: float = 10) -> QuarantinedUsageEvent:
    """The request's quarantined event, once booking it has been tried (a request settles
    just after its answer has left)."""
    deadline = time.monotonic() + timeout
    while (kept := QuarantinedUsageEvent.objects.filter(request_id=request_id).first()) is None:
        assert time.monotonic() < deadline, f"request {request_id} was never quarantined"
        reconcile()
        time.sleep(0.05)
    return kept


def whale(org):
    """`org` with its balance just above what the money columns hold below zero, and the
    credit to go on: one request reported at 2^40 tokens takes it past that."""
    adjust(org.pk, Decimal("-8999999"), note="test: near the money column's floor")
    set_credit_limit(org.pk, Decimal("9200000"))
    return org


def test_an_event_the_ledger_refuses_frees_its_pending_cost_and_stays_owed(client, org):
    whale(org)
    answered = client.chat.completions.with_raw_response.create(model="mock:huge-usage", messages=HELLO)
    kept = quarantined(answered.headers["x-request-id"])
    assert kept.organization == org and not UsageRecord.objects.filter(organization=org).exists()
    assert live.snapshot(org.pk).pending == 0  # the organization's balance is not held forever
    assert ledger_is_consistent(org.pk)
