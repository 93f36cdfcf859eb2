"""Named reads of billing's models for the console pages above it, so the pages ask for
what they show instead of querying billing tables themselves; and a key's booked spend,
which the live store (billing.live) starts a key's counter from."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Sum

from django.db import connection

from .models import Account, LedgerEntry, TopUp, UsageDailyRollup, UsageDay, UsageRecord
from .money import ZERO, from_units


def account_of(org) -> Account | None:
    return Account.objects.filter(organization=org).first()


def ledger_of(org):
    """The organization's ledger entries, newest first. Filtered by the account's id, not
    through a join, so the (account, -id) index answers it however big other ledgers are."""
    account_id = Account.objects.filter(organization=org).values_list("pk", flat=True).first()
    if account_id is None:
        return LedgerEntry.objects.none()
    return LedgerEntry.objects.filter(account_id=account_id).order_by("-id")


def days_of(org):
    """The organization's per-day usage sums (billing.daily keeps them at booking time)."""
    return UsageDay.objects.filter(organization=org)


def models_used(org) -> list[str]:
    """Every model the organization's booked requests were served by, sorted: read from the
    per-day sums, a few thousand rows, rather than from millions of records."""
    return list(days_of(org).order_by("model").values_list("model", flat=True).distinct())


def usage_of(org):
    """The organization's booked requests (unordered)."""
    return UsageRecord.objects.filter(organization=org)


def usage_by_day(org, first_day):
    """Rows of day (UTC), spend (Decimal) and request count from `first_day` on, oldest
    first; days without requests are absent."""
    return (
        days_of(org).filter(day__gte=first_day)
        .values("day")
        .annotate(spend=Sum("cost"), requests=Sum("requests"))
        .order_by("day")
    )


def usage_by_model(org, first_day) -> list[dict]:
    """Requests, tokens and cost per model from `first_day` (UTC) on, the costliest first."""
    return list(
        days_of(org).filter(day__gte=first_day)
        .values("model")
        .annotate(requests=Sum("requests"), prompt_tokens=Sum("prompt_tokens"),
                  completion_tokens=Sum("completion_tokens"), cost=Sum("cost"))
        .order_by("-cost", "model")
    )


def day_totals(days) -> dict:
    """Requests, prompt and completion tokens and cost over a queryset of UsageDay rows, and
    the first and last day among them (None without rows)."""
    totals = days.order_by().aggregate(requests=Sum("requests"), prompt_tokens=Sum("prompt_tokens"),
                                       completion_tokens=Sum("completion_tokens"), cost=Sum("cost"),
                                       first_day=Min("day"), last_day=Max("day"))
    return {name: value if name.endswith("_day") else value or 0 for name, value in totals.items()}


def usage_totals(records) -> dict:
    """Requests, prompt and completion tokens and cost (Decimal USD) over a queryset of
    usage records, such as a filtered page's; zeros for none."""
    totals = records.order_by().aggregate(requests=Count("id"), prompt_tokens=Sum("prompt_tokens"),
                                          completion_tokens=Sum("completion_tokens"), cost=Sum("cost"))
    return {name: value or 0 for name, value in totals.items()}


def topups_of(org, *, settled_only: bool = False):
    """The organization's Stripe top-ups, newest first; `settled_only`: paid or refunded."""
    topups = TopUp.objects.filter(organization=org)
    return topups.exclude(status=TopUp.Status.PENDING) if settled_only else topups


def key_spent(key_id: int, start=None, end=None) -> Decimal:
    """What the ledger has booked for a key (Decimal USD) from `start` (inclusive) to `end`
    (exclusive), or in all when both are None: its usage records by request time, and the
    daily rollups retention made of older ones by their UTC day. The live store rebuilds a
    key's spend with the same rule (key_spend_booked)."""
    return from_units(key_spend_booked(key_id, (start, end)))


def key_spend_booked(key_id: int, period: tuple[datetime | None, datetime | None] = (None, None)) -> int:
    """What the ledger has booked for the key (picodollars) from the period's start
    (inclusive) to its end (exclusive), each None for unbounded: its usage records by
    request time and the daily rollups retention made of older ones by their UTC day (a
    period starts at a UTC midnight). One statement, so a record that moves into a rollup
    meanwhile is counted exactly once. The one implementation of a key's booked spend."""
    start, end = period
    records, rollups, ops = UsageRecord._meta.db_table, UsageDailyRollup._meta.db_table, connection.ops
    in_records, in_rollups, record_params, rollup_params = "", "", [key_id], [key_id]
    for bound, operator in ((start, ">="), (end, "<")):
        if bound is not None:
            in_records += f" AND created_at {operator} %s"
            in_rollups += f" AND day {operator} %s"
            record_params.append(ops.adapt_datetimefield_value(bound))
            rollup_params.append(ops.adapt_datefield_value(bound.date()))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT COALESCE(SUM(cost), 0) FROM {records} WHERE api_key_id = %s{in_records})"
                       f" + (SELECT COALESCE(SUM(cost), 0) FROM {rollups} WHERE api_key_id = %s{in_rollups})",
                       record_params + rollup_params)
        return int(cursor.fetchone()[0])
