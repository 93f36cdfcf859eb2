"""Named reads of billing's models for the console pages above it, so the pages ask for
what they show instead of querying billing tables themselves."""

from decimal import Decimal

from django.db.models import Count, Max, Min, Sum

from .models import Account, LedgerEntry, TopUp, UsageDailyRollup, UsageDay, UsageRecord
from .money import ZERO


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
