"""The dashboard shows the current organization's balance and usage, and nobody else's."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from billing.charging import UsageEvent
from billing.money import token_cost
from billing.reconcile import book

pytestmark = pytest.mark.django_db


def usage(org, prompt, completion, *, model="mock:ok", days_ago=0, status="completed"):
    when = datetime.now(UTC) - timedelta(days=days_ago)
    cost = token_cost(prompt, completion, Decimal("0.27"), Decimal("1.10"))
    return UsageEvent(
        request_id=str(uuid.uuid4()), organization_id=org.pk, key_id=None, model_id=None, model=model,
        stream=False, status=status, http_status=200, error_code=None, prompt_tokens=prompt,
        completion_tokens=completion, cached_tokens=0, reasoning_tokens=0, basis="provider",
        input_per_mtok="0.27", output_per_mtok="1.10", cached_input_per_mtok=None, cost=str(cost),
        started_at=when.isoformat(), latency_ms=5, ttft_ms=None,
    ).__dict__


def chart_of(resp) -> dict:
    page = resp.content.decode()
    start = page.index('<script id="usage-data" type="application/json">') + len(
        '<script id="usage-data" type="application/json">')
    return json.loads(page[start:page.index("</script>", start)])


def test_it_shows_the_balance(as_alice):
    resp = as_alice.get("/dashboard/")
    assert resp.status_code == 200
    assert resp.context["balance"] == "100"
    assert "100" in resp.content.decode()


def test_it_points_to_the_quickstart_without_usage(as_alice):
    page = as_alice.get("/dashboard/").content.decode()
    assert "No requests yet" in page and 'href="/quickstart/"' in page
    assert "usage-data" not in page and "chart.umd.min.js" not in page


def test_it_counts_only_the_organizations_usage(as_alice, org, other_org):
    book([usage(org, 1_000_000, 0), usage(org, 0, 1_000_000, model="demo:echo", days_ago=3),
          usage(other_org, 5_000_000, 5_000_000, model="secret:model")])
    resp = as_alice.get("/dashboard/")
    page = resp.content.decode()
    assert resp.context["balance"] == str(Decimal("100") - Decimal("0.27") - Decimal("1.10"))
    assert resp.context["spend_30d"] == "1.37"
    assert resp.context["requests_30d"] == 2
    assert "secret:model" not in page
    models = {m["model"]: m for m in resp.context["models"]}
    assert set(models) == {"mock:ok", "demo:echo"}
    assert models["mock:ok"]["prompt_tokens"] == 1_000_000 and models["mock:ok"]["cost"] == "0.27"
    assert models["demo:echo"]["completion_tokens"] == 1_000_000 and models["demo:echo"]["cost"] == "1.1"
    assert len(resp.context["latest"]) == 2


def test_the_chart_has_thirty_days_of_daily_bars(as_alice, org, other_org):
    book([usage(org, 1_000_000, 0), usage(org, 1_000_000, 0), usage(org, 0, 1_000_000, days_ago=2),
          usage(org, 1_000_000, 0, days_ago=40), usage(other_org, 1_000_000, 0)])
    chart = chart_of(as_alice.get("/dashboard/"))
    today = datetime.now(UTC).date()
    assert chart["days"] == [(today - timedelta(days=29 - i)).isoformat() for i in range(30)]
    assert chart["spend"][-1] == "0.54" and chart["requests"][-1] == 2
    assert chart["spend"][-3] == "1.1" and chart["requests"][-3] == 1
    assert sum(chart["requests"]) == 3  # 40 days ago is outside the window
    assert chart["spend"].count("0") == 28


def test_it_lists_the_latest_ten_requests_newest_first(as_alice, org):
    book([usage(org, i, 1, days_ago=i) for i in range(12)])
    latest = as_alice.get("/dashboard/").context["latest"]
    assert len(latest) == 10
    assert [row["tokens"] for row in latest] == [i + 1 for i in range(10)]


def test_it_loads_chart_js_from_static_not_a_cdn(as_alice, org):
    book([usage(org, 10, 10)])
    page = as_alice.get("/dashboard/").content.decode()
    assert '/static/vendor/chart.umd.min.js' in page
    assert "cdn" not in page.lower()


def test_it_shows_each_member_their_current_organization(as_charlie, org):
    book([usage(org, 10, 10, model="alpha:only")])
    page = as_charlie.get("/dashboard/").content.decode()
    assert "alpha:only" not in page and "No requests yet" in page


def test_it_needs_a_login():
    resp = Client().get("/dashboard/")
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]
