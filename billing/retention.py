"""Usage retention: usage records older than USAGE_RETENTION_DAYS become daily rollups.

Only UsageRecord rows are summarised and deleted. Ledger entries and accounts are never
touched, so balances stay exactly what they were; a usage ledger entry simply outlives the
record that pointed at it. What the layers above keep per request goes with the records
(`usage_pruned`: the gateway deletes stored /v1/responses answers older than the cutoff).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import UsageDailyRollup, UsageRecord
from .signals import usage_pruned
from .money import ZERO

BATCH_SIZE = 2000


@dataclass
class PruneResult:
    retention_days: int
    cutoff: datetime | None = None
    records: int = 0
    days: set[date] = field(default_factory=set)
    rollups: set[int] = field(default_factory=set)


def _day_bounds(day: date, cutoff: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, min(start + timedelta(days=1), cutoff)


def _roll_up_batch(day: date, start: datetime, end: datetime, result: PruneResult) -> int:
    """Sum up to BATCH_SIZE records of one day into its rollups and delete them, all in one
    transaction: a crash leaves either both the sums and the deletion, or neither."""
    with transaction.atomic():
        # Locked, so two pruners at once never both count a record: the second one waits
        # and then no longer finds the rows the first deleted.
        ids = list(
            UsageRecord.objects.select_for_update()
            .filter(created_at__gte=start, created_at__lt=end)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH_SIZE]
        )
        if not ids:
            return 0
        # Summed in Python: exact for money on every database (SQLite sums decimals as floats).
        totals = defaultdict(lambda: [0, 0, 0, ZERO])
        rows = UsageRecord.objects.filter(pk__in=ids).values_list(
            "organization_id", "model", "api_key_id", "prompt_tokens", "completion_tokens", "cost"
        )
        for org_id, model, key_id, prompt, completion, cost in rows:
            sums = totals[(org_id, model, key_id)]
            sums[0] += 1
            sums[1] += prompt
            sums[2] += completion
            sums[3] += cost
        for (org_id, model, key_id), (requests, prompt, completion, cost) in totals.items():
            rollup, _ = UsageDailyRollup.objects.get_or_create(
                organization_id=org_id, day=day, model=model, api_key_id=key_id
            )
            rollup = UsageDailyRollup.objects.select_for_update().get(pk=rollup.pk)
            rollup.requests += requests
            rollup.prompt_tokens += prompt
            rollup.completion_tokens += completion
            rollup.cost += cost
            rollup.save(update_fields=["requests", "prompt_tokens", "completion_tokens", "cost"])
            result.rollups.add(rollup.pk)
        # The foreign key to the ledger lives on UsageRecord: deleting it leaves the entry.
        UsageRecord.objects.filter(pk__in=ids).delete()
    return len(ids)


def prune_usage(now: datetime | None = None, *, retention_days: int | None = None) -> PruneResult:
    """Roll up and delete usage records older than the retention period (0 keeps all)."""
    days = settings.USAGE_RETENTION_DAYS if retention_days is None else retention_days
    result = PruneResult(retention_days=days)
    if days <= 0:
        return result
    result.cutoff = cutoff = (now or timezone.now()) - timedelta(days=days)
    while True:
        oldest = (UsageRecord.objects.filter(created_at__lt=cutoff).order_by("created_at")
                  .values_list("created_at", flat=True).first())
        if oldest is None:
            usage_pruned.send(sender=prune_usage, cutoff=cutoff)
            return result
        day = oldest.astimezone(UTC).date()
        start, end = _day_bounds(day, cutoff)
        while count := _roll_up_batch(day, start, end, result):
            result.records += count
            result.days.add(day)
