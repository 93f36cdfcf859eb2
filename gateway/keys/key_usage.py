"""What a key has used: when it was last used, which the booking worker keeps (billing's
usage_booked signal, connected in GatewayConfig.ready), not the request path, which writes
nothing; and what it spent in its budget period, for the console and the management API."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection

from billing.batch_params import json_rows, rows_param
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


def latest_use(records) -> dict[int, object]:
    """Each key's latest request time among the records."""
    latest = {}
    for record in records:
        key_id = record.api_key_id
        if key_id and (key_id not in latest or record.created_at > latest[key_id]):
            latest[key_id] = record.created_at
    return latest


def remember_last_use(sender, records, **kwargs) -> None:
    """One UPDATE per batch on PostgreSQL (one parameter), however many keys it touched (a per-key UPDATE
    was the booking worker's largest cost when every request used its own key). Keys are
    updated in id order so two workers cannot deadlock; a time never moves backwards."""
    latest = sorted(latest_use(records).items())
    if not latest:
        return
    if connection.vendor != "postgresql":
        for key_id, when in latest:
            ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=when).update(last_used_at=when)
        return
    table = connection.ops.quote_name(ApiKey._meta.db_table)
    uses = json_rows([("id", "bigint"), ("used", "timestamptz")])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS k SET last_used_at = v.used FROM ({uses}) AS v "
            "WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.used)",
            [rows_param(latest)])
