"""/api/v1/usage, /usage/summary and /ledger: exact fields, filters, groups, pages, and
nothing of another organization's."""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing import daily
from billing.ledger import credit
from billing.models import UsageRecord
from gateway.keys.api_keys import mint_api_key
from tests.api.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

DAY1 = datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc)
DAY2 = datetime(2026, 12, 1, 0, 0, 0, tzinfo=timezone.utc)
USAGE_FIELDS = {"request_id", "created_at", "key_id", "model", "served_by", "status", "basis", "prompt_tokens",
                "completion_tokens", "cost_usd"}


def record(org, key, when, *, model="demo:echo", status="completed", prompt=8, completion=1, cost="0.00000326"):
    """A booked record, with the per-day sums booking keeps beside it."""
    booked = UsageRecord.objects.create(
        request_id=str(uuid.uuid4()), organization=org, api_key=key, model=model, status=status, http_status=200,
        prompt_tokens=prompt, completion_tokens=completion, basis="provider", input_per_mtok=Decimal("0.27"),
        output_per_mtok=Decimal("1.10"), cost=Decimal(cost), created_at=when)
    daily.add_usage([booked])
    return booked


@pytest.fixture
def history(org, other_org):
    first, _ = mint_api_key(org, name="first")
    second, _ = mint_api_key(org, name="second")
    theirs, _ = mint_api_key(other_org, name="theirs")
    rows = [
        record(org, first, DAY1),
        record(org, first, DAY2, model="mock:ok", prompt=10, completion=20, cost="0.0000247"),
        record(org, second, DAY2 + timedelta(hours=1), status="upstream_error", prompt=0, completion=0, cost="0"),
        record(other_org, theirs, DAY2, cost="9"),
    ]
    return {"first": first, "second": second, "theirs": theirs, "rows": rows}


def ids(page) -> list[str]:
    return [r["request_id"] for r in page["results"]]


def test_it_lists_booked_requests_newest_first_with_exact_fields(api, history):
    page = api.get("usage").json()
    mine = history["rows"][:3]
    assert ids(page) == [r.request_id for r in reversed(mine)] and page["next"] is None
    assert page["results"][-1] == {
        "request_id": mine[0].request_id, "created_at": "2026-11-30T23:59:59Z", "key_id": history["first"].pk,
        "model": "demo:echo", "served_by": "demo:echo", "status": "completed", "basis": "provider",
        "prompt_tokens": 8, "completion_tokens": 1, "cost_usd": "0.00000326"}
    assert all(set(r) == USAGE_FIELDS for r in page["results"])


def test_filters_narrow_the_list(api, history):
    first, second, theirs = history["first"], history["second"], history["theirs"]
    rows = history["rows"]
    assert ids(api.get("usage", params={"since": "2026-12-01"}).json()) == [rows[2].request_id, rows[1].request_id]
    assert ids(api.get("usage", params={"until": "2026-12-01T00:00:00Z"}).json()) == [rows[0].request_id]
    assert ids(api.get("usage", params={"model": "mock:ok"}).json()) == [rows[1].request_id]
    assert ids(api.get("usage", params={"key": second.pk}).json()) == [rows[2].request_id]
    assert ids(api.get("usage", params={"status": "upstream_error"}).json()) == [rows[2].request_id]
    assert ids(api.get("usage", params={"key": first.pk, "since": "2026-12-01"}).json()) == [rows[1].request_id]
    # Another organization's key matches nothing rather than showing its rows.
    assert api.get("usage", params={"key": theirs.pk}).json() == {"results": [], "next": None}
    assert_envelope(api.get("usage", params={"since": "yesterday"}), 400, "invalid_value", "since")
    assert_envelope(api.get("usage", params={"key": "first"}), 400, "invalid_value", "key")
    assert_envelope(api.get("usage", params={"status": "nope"}), 400, "invalid_value", "status")


def test_pages_follow_the_cursor_and_keep_the_filters(api, org, history):
    for i in range(5):
        record(org, history["first"], DAY2 + timedelta(minutes=10 + i), model="mock:ok")
    seen, url = [], "usage?model=mock:ok&limit=2"
    while url:
        page = api.get(url).json()
        seen += page["results"]
        url = page["next"]
        assert url is None or "model=mock" in url
    assert len(seen) == 6 and all(r["model"] == "mock:ok" for r in seen)
    assert [r["created_at"] for r in seen] == sorted((r["created_at"] for r in seen), reverse=True)


def test_the_summary_groups_by_day_model_and_key(api, history):
    first, second = history["first"], history["second"]
    by_day = api.get("usage/summary", params={"group_by": "day"}).json()
    assert by_day == {"group_by": "day", "results": [
        {"day": "2026-11-30", "requests": 1, "prompt_tokens": 8, "completion_tokens": 1, "cost_usd": "0.00000326"},
        {"day": "2026-12-01", "requests": 2, "prompt_tokens": 10, "completion_tokens": 20, "cost_usd": "0.0000247"},
    ]}
    by_model = api.get("usage/summary", params={"group_by": "model"}).json()["results"]
    assert [(g["model"], g["requests"], g["cost_usd"]) for g in by_model] == [
        ("demo:echo", 2, "0.00000326"), ("mock:ok", 1, "0.0000247")]
    by_key = api.get("usage/summary", params={"group_by": "key", "status": "completed"}).json()["results"]
    assert by_key == [{"key_id": first.pk, "requests": 2, "prompt_tokens": 18, "completion_tokens": 21,
                       "cost_usd": "0.00002796"}]
    assert second.pk not in [g["key_id"] for g in by_key]
    assert_envelope(api.get("usage/summary"), 400, "missing_required_parameter", "group_by")
    assert_envelope(api.get("usage/summary", params={"group_by": "week"}), 400, "invalid_value", "group_by")


def test_the_ledger_lists_entries_newest_first(api, org, other_org):
    credit(other_org.pk, Decimal("7"), note="theirs")
    entry = credit(org.pk, Decimal("0.000000000001"), note="one picodollar")
    page = api.get("ledger").json()
    assert page["next"] is None and [e["note"] for e in page["results"]] == ["one picodollar", "test credit"]
    assert page["results"][0] == {
        "id": entry.pk, "created_at": entry.created_at.isoformat().replace("+00:00", "Z"), "kind": "credit",
        "amount_usd": "0.000000000001", "balance_after_usd": "100.000000000001", "reference": entry.reference,
        "note": "one picodollar"}
    assert len(api.get("ledger?limit=1").json()["results"]) == 1
