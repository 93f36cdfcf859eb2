"""Usage retention: records older than USAGE_RETENTION_DAYS become exact daily rollups and
are deleted; newer records, balances and ledger entries stay exactly as they were."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from itertools import count

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.ledger import post_entry
from billing.models import Account, LedgerEntry, UsageDailyRollup, UsageRecord
from billing.retention import prune_usage
from billing.tasks import prune_usage as prune_usage_task
from gateway.keys.api_keys import mint_api_key

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
_ids = count(1)


def usage(org, created_at, *, key=None, model="mock:ok", prompt=10, completion=5, cost="0.0000082"):
    """A booked request: its usage record and the usage ledger entry naming it."""
    request_id = f"req-ret-{next(_ids)}"
    post_entry(org.pk, LedgerEntry.Kind.USAGE, -Decimal(cost), reference=f"usage:{request_id}")
    return UsageRecord.objects.create(
        request_id=request_id, organization=org, api_key=key, model=model, status="completed", http_status=200,
        basis=UsageRecord.Basis.PROVIDER, prompt_tokens=prompt, completion_tokens=completion,
        input_per_mtok=Decimal("0.27"), output_per_mtok=Decimal("1.10"), cost=Decimal(cost),
        latency_ms=12, created_at=created_at,
    )


def ledger_state():
    return (
        list(Account.objects.order_by("pk").values_list("organization_id", "balance", "ledger_head")),
        list(LedgerEntry.objects.order_by("pk").values_list("pk", "amount", "balance_after", "reference")),
    )


def rollups():
    return {
        (r.organization_id, r.day.isoformat(), r.model, r.api_key_id): (r.requests, r.prompt_tokens,
                                                                         r.completion_tokens, r.cost)
        for r in UsageDailyRollup.objects.all()
    }


@pytest.fixture
def key(org):
    key, _ = mint_api_key(org, name="retention")
    return key


def test_it_keeps_everything_by_default(org, settings):
    settings.USAGE_RETENTION_DAYS = 0
    usage(org, NOW - timedelta(days=400))
    result = prune_usage(NOW)
    assert result.records == 0 and result.cutoff is None
    assert UsageRecord.objects.count() == 1 and not UsageDailyRollup.objects.exists()


def test_it_rolls_up_old_records_exactly_and_keeps_new_ones(org, other_org, key, settings):
    settings.USAGE_RETENTION_DAYS = 30
    day1 = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    day2 = datetime(2026, 2, 2, 23, 59, 59, tzinfo=UTC)
    usage(org, day1, key=key, prompt=10, completion=5, cost="0.000001000001")
    usage(org, day1 + timedelta(hours=5), key=key, prompt=7, completion=3, cost="0.000002000002")
    usage(org, day1 + timedelta(hours=6), key=None, prompt=1, completion=1, cost="0.5")
    usage(org, day1 + timedelta(hours=7), key=key, model="demo:echo", prompt=2, completion=2, cost="0.1")
    usage(org, day2, key=key, prompt=100, completion=50, cost="1.000000000001")
    usage(other_org, day1, prompt=4, completion=4, cost="0.25")
    kept = [
        usage(org, NOW - timedelta(days=30) + timedelta(seconds=1)),
        usage(org, NOW - timedelta(hours=1)),
    ]
    before = ledger_state()

    result = prune_usage(NOW)

    assert result.records == 6 and len(result.days) == 2 and len(result.rollups) == 5
    assert rollups() == {
        (org.pk, "2026-02-01", "mock:ok", key.pk): (2, 17, 8, Decimal("0.000003000003")),
        (org.pk, "2026-02-01", "mock:ok", None): (1, 1, 1, Decimal("0.5")),
        (org.pk, "2026-02-01", "demo:echo", key.pk): (1, 2, 2, Decimal("0.1")),
        (org.pk, "2026-02-02", "mock:ok", key.pk): (1, 100, 50, Decimal("1.000000000001")),
        (other_org.pk, "2026-02-01", "mock:ok", None): (1, 4, 4, Decimal("0.25")),
    }
    assert set(UsageRecord.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    assert ledger_state() == before  # balances and every ledger entry untouched


def test_running_it_again_changes_nothing(org, key, settings):
    settings.USAGE_RETENTION_DAYS = 7
    usage(org, NOW - timedelta(days=10), key=key, cost="0.3")
    usage(org, NOW - timedelta(days=1), key=key)
    prune_usage(NOW)
    after_first = (rollups(), list(UsageRecord.objects.values_list("pk", flat=True)), ledger_state())
    second = prune_usage(NOW)
    assert second.records == 0
    assert (rollups(), list(UsageRecord.objects.values_list("pk", flat=True)), ledger_state()) == after_first


def test_later_records_of_a_day_are_added_to_its_rollup(org, key, settings):
    # The cutoff falls in the middle of a day: that day is rolled up in two runs.
    settings.USAGE_RETENTION_DAYS = 1
    usage(org, datetime(2026, 3, 18, 8, 0, tzinfo=UTC), key=key, prompt=1, completion=1, cost="0.1")
    usage(org, datetime(2026, 3, 18, 20, 0, tzinfo=UTC), key=key, prompt=2, completion=2, cost="0.2")
    prune_usage(datetime(2026, 3, 19, 12, 0, tzinfo=UTC))
    assert rollups() == {(org.pk, "2026-03-18", "mock:ok", key.pk): (1, 1, 1, Decimal("0.1"))}
    prune_usage(datetime(2026, 3, 20, 12, 0, tzinfo=UTC))
    assert rollups() == {(org.pk, "2026-03-18", "mock:ok", key.pk): (2, 3, 3, Decimal("0.3"))}
    assert not UsageRecord.objects.exists()


def test_a_failed_batch_rolls_back_both_sums_and_deletion(org, settings, monkeypatch):
    settings.USAGE_RETENTION_DAYS = 1
    record = usage(org, NOW - timedelta(days=3), cost="0.4")

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr("django.db.models.query.QuerySet.delete", crash)
    with pytest.raises(RuntimeError):
        prune_usage(NOW)
    monkeypatch.undo()
    assert UsageRecord.objects.filter(pk=record.pk).exists() and not UsageDailyRollup.objects.exists()
    prune_usage(NOW)
    assert list(rollups().values()) == [(1, 10, 5, Decimal("0.4"))]


def test_it_works_in_batches(org, settings, monkeypatch):
    settings.USAGE_RETENTION_DAYS = 1
    monkeypatch.setattr("billing.retention.BATCH_SIZE", 2)
    for n in range(5):
        usage(org, NOW - timedelta(days=2, minutes=n), cost="0.01")
    assert prune_usage(NOW).records == 5
    assert list(rollups().values()) == [(5, 50, 25, Decimal("0.05"))]


def test_the_command_says_what_it_did(org, settings):
    settings.USAGE_RETENTION_DAYS = 0
    out = StringIO()
    call_command("prune_usage", stdout=out)
    assert "kept forever" in out.getvalue()

    usage(org, datetime(2020, 1, 1, tzinfo=UTC))
    out = StringIO()
    call_command("prune_usage", "--days", "30", stdout=out)
    assert out.getvalue().startswith("rolled up 1 usage records older than 30 days")
    assert "from 1 days into 1 daily rollups" in out.getvalue()


def test_the_task_runs_with_the_setting(org, settings):
    settings.USAGE_RETENTION_DAYS = 30
    usage(org, datetime(2020, 1, 1, tzinfo=UTC))
    assert prune_usage_task.apply().get() == 1
    assert "prune-usage" in settings.CELERY_BEAT_SCHEDULE


def test_a_keys_spend_limit_still_counts_the_usage_retention_rolled_up(org, key, settings):
    from billing import live
    from billing.charging import KeySpendLimitReached
    from gateway.keys.api_keys import identity_of

    settings.USAGE_RETENTION_DAYS = 30
    usage(org, timezone.now() - timedelta(days=60), key=key, cost="0.6")
    usage(org, timezone.now() - timedelta(days=45), key=key, cost="0.3")
    usage(org, timezone.now() - timedelta(days=1), key=key, cost="0.05")
    assert prune_usage().records == 2
    assert UsageRecord.objects.filter(api_key=key).count() == 1
    key.spend_limit = Decimal("1")
    limited = identity_of(key)
    # 0.95 USD of the key's 1 USD is spent, 0.9 of it only in the rollups.
    with pytest.raises(KeySpendLimitReached):
        live.admit(limited, "req-ret-over", Decimal("0.050000000001"))
    live.admit(limited, "req-ret-fits", Decimal("0.05"))
