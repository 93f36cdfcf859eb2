"""What keeps a long history cheap stays exact: the per-day sums booking keeps, the batched
last_used_at, ledger_is_consistent summed by the database, and the history generator."""

import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from billing.ledger import credit
from billing.models import Account, LedgerEntry, LedgerUsageDay, UsageDay, UsageRecord
from billing.queries import usage_by_day, usage_by_model
from billing.reconcile import book, ledger_is_consistent
from gateway.keys.api_keys import mint_api_key
from gateway.models import ApiKey
from tests.console.test_usage import event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)  # batches straddle midnight


def raw_days(org) -> dict:
    sums = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for r in UsageRecord.objects.filter(organization=org):
        row = sums[(r.created_at.astimezone(UTC).date(), r.model, r.api_key_id or 0, r.status)]
        row[0] += 1
        row[1] += r.prompt_tokens
        row[2] += r.completion_tokens
        row[3] += r.cost
    return {group: tuple(v) for group, v in sums.items()}


def kept_days(org) -> dict:
    return {(d.day, d.model, d.key_id, d.status): (d.requests, d.prompt_tokens, d.completion_tokens, d.cost)
            for d in UsageDay.objects.filter(organization=org)}


@pytest.fixture
def history(org, other_org):
    keys = [mint_api_key(org, name=f"k{i}")[0] for i in range(3)]
    batch = [event(org, key=keys[i % 3] if i % 4 else None, model=("demo:echo", "mock:ok")[i % 2],
                   status="upstream_error" if i % 5 == 0 else "completed", prompt=i * 1234 + 1, completion=i * 7,
                   when=T0 + timedelta(microseconds=i * 7)) for i in range(40)]
    batch += [event(other_org, prompt=99, when=T0)]
    book(batch[:25])
    book(batch[20:])  # overlapping redelivery: the five again must not be summed twice
    return keys, batch


def test_the_day_sums_equal_the_records_even_after_a_redelivery(org, other_org, history):
    assert kept_days(org) == raw_days(org)
    assert kept_days(other_org) == raw_days(other_org)
    assert UsageRecord.objects.filter(organization=org).count() == 40


def test_the_ledger_day_sums_equal_the_usage_entries_to_the_picodollar(org, history):
    account = Account.objects.get(organization=org)
    sums = defaultdict(lambda: [0, Decimal(0), None, None])
    for e in LedgerEntry.objects.filter(account=account, kind="usage"):
        row = sums[e.created_at.astimezone(UTC).date()]
        row[0] += 1
        row[1] += e.amount
        row[2] = e.pk if row[2] is None else min(row[2], e.pk)
        row[3] = e.pk if row[3] is None else max(row[3], e.pk)
    assert {d.day: [d.entries, d.amount, d.first_entry_id, d.last_entry_id]
            for d in LedgerUsageDay.objects.filter(account=account)} == dict(sums)


def test_the_dashboard_sums_from_day_sums_match_the_records(org, history):
    first = T0.date()
    records = UsageRecord.objects.filter(organization=org, created_at__gte=datetime(2026, 11, 20, tzinfo=UTC))
    by_day = {row["day"]: (row["spend"], row["requests"]) for row in usage_by_day(org, first)}
    expected = defaultdict(lambda: [Decimal(0), 0])
    for r in records:
        expected[r.created_at.astimezone(UTC).date()][0] += r.cost
        expected[r.created_at.astimezone(UTC).date()][1] += 1
    assert by_day == {day: tuple(v) for day, v in expected.items()} and len(by_day) == 2
    models = {row["model"]: (row["requests"], row["cost"]) for row in usage_by_model(org, first)}
    assert models == {m: (records.filter(model=m).count(), sum((r.cost for r in records.filter(model=m)), Decimal(0)))
                      for m in ("demo:echo", "mock:ok")}


def test_each_key_remembers_its_latest_use_and_never_goes_back(org, history):
    keys, batch = history
    for key in keys:
        latest = max(datetime.fromisoformat(e["started_at"]) for e in batch if e["key_id"] == key.pk)
        assert ApiKey.objects.get(pk=key.pk).last_used_at == latest
    book([event(org, key=keys[0], when=T0 - timedelta(days=3))])  # a late, older event
    assert ApiKey.objects.get(pk=keys[0].pk).last_used_at > T0


def test_ledger_is_consistent_tells_a_true_ledger_from_a_broken_one(org, history):
    assert ledger_is_consistent(org.pk)
    account = Account.objects.get(organization=org)
    Account.objects.filter(pk=account.pk).update(balance=account.balance + Decimal("0.000000000001"))
    assert not ledger_is_consistent(org.pk)  # one picodollar off
    Account.objects.filter(pk=account.pk).update(balance=account.balance)
    assert ledger_is_consistent(org.pk)
    Account.objects.filter(pk=account.pk).update(ledger_head=account.ledger_head - 1)
    assert not ledger_is_consistent(org.pk)  # an entry beyond the head


def test_an_account_with_only_credits_is_consistent(other_org):
    credit(other_org.pk, Decimal("0.5"), note="more")
    assert ledger_is_consistent(other_org.pk)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the generator writes with PostgreSQL COPY")
def test_the_history_generator_writes_a_consistent_history():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import history as generator

    result = generator.generate(1000, days=5)
    org_id = result["org"]
    assert UsageRecord.objects.filter(organization_id=org_id).count() == 1000
    assert ledger_is_consistent(org_id)
    from console.tenancy.models import Organization
    org = Organization.objects.get(pk=org_id)
    assert kept_days(org) == raw_days(org)
