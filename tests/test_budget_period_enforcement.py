"""A key's spend limit per budget period, enforced by the live store with a clock the test
controls: spent up to the limit, refused; past the UTC boundary, admitted again. The
counter is rebuilt from the ledger (records and rollups) for the period only. Runs on
whichever live store the suite has (the shared Redis in CI, the embedded fakeredis)."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing import charging, live
from billing.models import UsageDailyRollup
from billing.reconcile import reconcile
from gateway.api.errors import InsufficientQuota
from gateway.keys.api_keys import identity_of, mint_api_key
from gateway.keys.key_usage import period_spend
from gateway.metering import Charge
from gateway.models import ApiKey

# 1,000,000 prompt tokens at 0.40 USD per million: each request costs 0.40 USD exactly.
PRICES = charging.Prices(Decimal("0.40"), Decimal("1.00"), None)
COST = Decimal("0.40")
LIMIT = Decimal("1.00")

# The last hour of a period, the first second of the next, and when that one resets.
BOUNDARIES = {
    "daily": (datetime(2026, 3, 4, 23, 0, tzinfo=UTC), datetime(2026, 3, 5, 0, 0, 1, tzinfo=UTC),
              datetime(2026, 3, 6, tzinfo=UTC)),
    "weekly": (datetime(2026, 3, 8, 23, 0, tzinfo=UTC), datetime(2026, 3, 9, 0, 0, 1, tzinfo=UTC),  # Sun -> Mon
               datetime(2026, 3, 16, tzinfo=UTC)),
    "monthly": (datetime(2026, 1, 31, 23, 0, tzinfo=UTC), datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC),
                datetime(2026, 3, 1, tzinfo=UTC)),
}


def limited_key(org, period: str):
    row, _ = mint_api_key(org)
    ApiKey.objects.filter(pk=row.pk).update(spend_limit=LIMIT, budget_period=period)
    row.refresh_from_db()
    return row, identity_of(row)


def spend(key, when: datetime) -> str:
    """Admit (at `when`) and settle one request costing COST."""
    rid = f"req-{uuid.uuid4()}"
    live.admit(key, rid, COST, now=when)
    live.settle(key, {
        "request_id": rid, "organization_id": key.organization_id, "key_id": key.key_id, "model_id": None,
        "model": "mock:ok", "stream": False, "status": "completed", "http_status": 200, "error_code": None,
        "prompt_tokens": 1_000_000, "completion_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0,
        "basis": "provider", "started_at": when.isoformat(), "latency_ms": 5, "ttft_ms": None,
    }, PRICES, 0)
    return rid


def forget_live_spend(key) -> None:
    """As after an idle day or a Redis restart: the counter must come from the ledger."""
    live.client().delete(live.layout().key_spend(key.organization_id, key.key_id))


@pytest.mark.django_db
@pytest.mark.parametrize("period", sorted(BOUNDARIES))
def test_the_limit_resets_at_the_period_boundary(org, period):
    row, key = limited_key(org, period)
    last_hour, next_period, resets_at = BOUNDARIES[period]
    spend(key, last_hour)
    spend(key, last_hour)  # 0.80 of 1.00 spent
    with pytest.raises(InsufficientQuota) as refused:
        Charge.admit(f"req-{uuid.uuid4()}", key, COST, now=last_hour + timedelta(minutes=59))
    assert refused.value.code == "insufficient_quota" and "per UTC" in str(refused.value)
    spend(key, next_period)  # a new period: admitted again
    spend(key, next_period)
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(key, f"req-{uuid.uuid4()}", COST, now=next_period)

    # Rebuilt from the ledger, the counter holds the period's spend only.
    reconcile()
    forget_live_spend(key)
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(key, f"req-{uuid.uuid4()}", COST, now=next_period)
    forget_live_spend(key)
    live.admit(key, f"req-{uuid.uuid4()}", Decimal("0.20"), now=last_hour)  # 0.80 + 0.20: just fits
    assert period_spend(row, now=next_period) == (Decimal("0.80"), LIMIT, resets_at)


@pytest.mark.django_db
def test_a_key_without_a_period_counts_everything(org):
    row, key = limited_key(org, "none")
    last_hour, next_period, _ = BOUNDARIES["daily"]
    spend(key, last_hour)
    spend(key, next_period)
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(key, f"req-{uuid.uuid4()}", COST, now=next_period + timedelta(days=40))
    reconcile()
    assert period_spend(row, now=next_period) == (Decimal("0.80"), LIMIT, None)


@pytest.mark.django_db
def test_the_rebuilt_period_spend_counts_retentions_rollups_of_that_period_only(org):
    row, key = limited_key(org, "daily")
    last_hour, next_period, _ = BOUNDARIES["daily"]
    for day, cost in ((last_hour.date(), Decimal("0.90")), (next_period.date(), Decimal("0.50"))):
        UsageDailyRollup.objects.create(organization=org, day=day, model="mock:ok", api_key=row, requests=1,
                                        cost=cost)
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(key, f"req-{uuid.uuid4()}", COST, now=last_hour)  # 0.90 + 0.40 > 1.00
    live.admit(key, f"req-{uuid.uuid4()}", COST, now=next_period)  # 0.50 + 0.40
    assert period_spend(row, now=next_period)[0] == Decimal("0.50")


@pytest.mark.django_db
def test_a_request_of_the_ended_period_settling_late_counts_in_that_period(org):
    """Admitted at 23:59, settled after midnight: the new day's counter does not take it."""
    row, key = limited_key(org, "daily")
    last_hour, next_period, _ = BOUNDARIES["daily"]
    late = f"req-{uuid.uuid4()}"
    live.admit(key, late, COST, now=last_hour)
    live.admit(dataclasses.replace(key), f"req-{uuid.uuid4()}", COST, now=next_period)  # the new day starts
    live.settle(key, {
        "request_id": late, "organization_id": key.organization_id, "key_id": key.key_id, "model_id": None,
        "model": "mock:ok", "stream": False, "status": "completed", "http_status": 200, "error_code": None,
        "prompt_tokens": 1_000_000, "completion_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0,
        "basis": "provider", "started_at": last_hour.isoformat(), "latency_ms": 5, "ttft_ms": None,
    }, PRICES, 0)
    spent, held = live.client().hmget(live.layout().key_spend(key.organization_id, key.key_id), "spent", "held")
    assert (int(spent), int(held)) == (0, 400_000_000_000)  # only the new day's own hold


@pytest.mark.django_db
def test_a_process_whose_clock_lags_cannot_take_the_counter_back_a_period(org):
    row, key = limited_key(org, "daily")
    last_hour, next_period, _ = BOUNDARIES["daily"]
    spend(key, last_hour)
    spend(key, next_period)  # a process past midnight started the new day
    lagging = last_hour + timedelta(minutes=59, seconds=59)
    live.admit(key, f"req-{uuid.uuid4()}", COST, now=lagging)  # counted in the new day: 0.40 + 0.40
    period, spent, held = live.client().hmget(live.layout().key_spend(key.organization_id, key.key_id), "period", "spent", "held")
    assert period == f"daily:{int(next_period.replace(second=0).timestamp())}"
    assert (int(spent), int(held)) == (400_000_000_000, 400_000_000_000)
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(key, f"req-{uuid.uuid4()}", COST, now=next_period)
    # A change of the key's period is not "going back": the counter starts for the new kind,
    # from the ledger: March's two requests (0.80) leave no room for another.
    reconcile()
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(dataclasses.replace(key, budget_period="monthly"), f"req-{uuid.uuid4()}", COST, now=next_period)
    period, spent = live.client().hmget(live.layout().key_spend(key.organization_id, key.key_id), "period", "spent")
    assert (period, int(spent)) == (f"monthly:{int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())}", 800_000_000_000)
