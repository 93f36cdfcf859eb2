"""What a key has used: when it was last used, which the booking worker keeps (billing's
usage_booked signal, connected in GatewayConfig.ready), not the request path, which writes
nothing; and what it spent in its budget period, for the console and the management API."""

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from billing.budget_periods import period_bounds
from billing.queries import key_spent

from ..models import ApiKey


def period_spend(key: ApiKey, now: datetime | None = None) -> tuple[Decimal, Decimal | None, datetime | None]:
    """(spent, limit, resets_at) of the key's current budget period: what the ledger has
    booked for it since the period began (rollups included; requests settled in the last
    seconds are not booked yet), its spend limit (None: none), and when the period ends
    (None for "none", which never resets)."""
    start, end = period_bounds(key.budget_period, now or datetime.now(UTC))
    return key_spent(key.pk, start, end), key.spend_limit, end


def remember_last_use(sender, records, **kwargs) -> None:
    latest = defaultdict(lambda: None)
    for record in records:
        if record.api_key_id and (latest[record.api_key_id] is None or record.created_at > latest[record.api_key_id]):
            latest[record.api_key_id] = record.created_at
    for key_id, when in latest.items():
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=when).update(last_used_at=when)
