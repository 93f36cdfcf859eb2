"""Named reads of billing's models for the console pages above it, so the pages ask for
what they show instead of querying billing tables themselves; and a key's booked spend,
which the live store (billing.live) starts a key's counter from."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from django.db import connection

from .models import Account, LedgerEntry, TopUp, UsageDailyRollup, UsageRecord
from .money import from_units


def account_of(org) -> Account | None:
    return Account.objects.filter(organization=org).first()


def ledger_of(org):
    """The organization's ledger entries, newest first."""
    return LedgerEntry.objects.filter(account__organization=org).order_by("-id")


def usage_of(org):
    """The organization's booked requests (unordered)."""
    return UsageRecord.objects.filter(organization=org)


def usage_by_day(org, since):
    """Rows of day, spend (Decimal or None) and request count since `since`, oldest first;
    days without requests are absent."""
    return (
        usage_of(org).filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(spend=Sum("cost"), requests=Count("id"))
        .order_by("day")
    )


def usage_by_model(org, since) -> list[dict]:
    """Requests, tokens and cost per model since `since`, the costliest first."""
    return list(
        usage_of(org).filter(created_at__gte=since)
        .values("model")
        .annotate(requests=Count("id"), prompt_tokens=Sum("prompt_tokens"),
                  completion_tokens=Sum("completion_tokens"), cost=Sum("cost"))
        .order_by("-cost", "model")
    )


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
