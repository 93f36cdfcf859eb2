"""The dashboard: balance, the last 30 days of spend and requests, tokens by model and the
latest requests, all of the current organization. The sums come from the per-day table
booking keeps (billing.daily), so the page costs the same with ten records or ten million."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.shortcuts import render
from django.urls import path

from billing import stripe_topups
from billing.ledger import balance_of
from billing.money import ZERO, usd
from billing.queries import usage_by_day, usage_by_model, usage_of
from console.pages.common import org_view

DAYS = 30


def first_day_of_window(today):
    """The first of the last DAYS days (UTC days, as booking sums them)."""
    return today - timedelta(days=DAYS - 1)


def daily_usage(org, first_day) -> dict:
    """Spend (exact USD strings) and request counts per day, oldest first, zeros included."""
    by_day = {row["day"]: row for row in usage_by_day(org, first_day)}
    days = [first_day + timedelta(days=i) for i in range(DAYS)]
    return {
        "days": [d.isoformat() for d in days],
        "spend": [usd(by_day[d]["spend"] or ZERO) if d in by_day else "0" for d in days],
        "requests": [by_day[d]["requests"] if d in by_day else 0 for d in days],
    }


@org_view()
def index(request):
    org = request.org
    first_day = first_day_of_window(datetime.now(UTC).date())
    chart = daily_usage(org, first_day)
    models = usage_by_model(org, first_day)
    for row in models:
        row["cost"] = usd(row["cost"] or ZERO)
    latest = [
        {"record": r, "tokens": r.prompt_tokens + r.completion_tokens, "cost": usd(r.cost)}
        for r in usage_of(org).order_by("-created_at", "-id")[:10]
    ]
    balance = balance_of(org.pk)
    return render(request, "console/dashboard/index.html", {
        "title": "Dashboard",
        "balance": usd(balance),
        "no_money": balance <= 0,
        "stripe_enabled": stripe_topups.enabled(),
        "spend_30d": usd(sum((Decimal(d) for d in chart["spend"]), ZERO)),
        "requests_30d": sum(m["requests"] for m in models),
        "chart": chart,
        "models": models,
        "latest": latest,
        "days": DAYS,
    })


urlpatterns = [path("dashboard/", index, name="dashboard")]
