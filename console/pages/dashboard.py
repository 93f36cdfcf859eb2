"""The dashboard: balance, the last 30 days of spend and requests, tokens by model and the
latest requests, all of the current organization."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from billing import stripe_topups
from billing.ledger import balance_of
from billing.money import ZERO, usd
from billing.queries import usage_by_day, usage_by_model, usage_of
from console.pages.common import org_view

DAYS = 30


def window_start(today):
    """Midnight (in the console's time zone) of the first of the last DAYS days."""
    return timezone.make_aware(datetime.combine(today - timedelta(days=DAYS - 1), time.min))


def daily_usage(org, since) -> dict:
    """Spend (exact USD strings) and request counts per day, oldest first, zeros included."""
    first_day = timezone.localdate(since)
    by_day = {row["day"]: row for row in usage_by_day(org, since)}
    days = [first_day + timedelta(days=i) for i in range(DAYS)]
    return {
        "days": [d.isoformat() for d in days],
        "spend": [usd(by_day[d]["spend"] or ZERO) if d in by_day else "0" for d in days],
        "requests": [by_day[d]["requests"] if d in by_day else 0 for d in days],
    }


@org_view()
def index(request):
    org = request.org
    since = window_start(timezone.localdate())
    chart = daily_usage(org, since)
    models = usage_by_model(org, since)
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
