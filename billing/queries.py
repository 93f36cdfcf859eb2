"""Named reads of billing's models for the console pages above it, so the pages ask for
what they show instead of querying billing tables themselves."""

from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from .models import Account, LedgerEntry, TopUp, UsageDailyRollup, UsageRecord
from .money import ZERO


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
    daily rollups retention made of older ones by their UTC day."""
    records = UsageRecord.objects.filter(api_key_id=key_id)
    rollups = UsageDailyRollup.objects.filter(api_key_id=key_id)
    if start is not None:
        records, rollups = records.filter(created_at__gte=start), rollups.filter(day__gte=start.date())
    if end is not None:
        records, rollups = records.filter(created_at__lt=end), rollups.filter(day__lt=end.date())
    total = ZERO
    for rows in (records, rollups):
        total += rows.order_by().aggregate(spent=Sum("cost"))["spent"] or ZERO
    return total
