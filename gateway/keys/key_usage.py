"""When each key was last used. The booking worker keeps it (billing's usage_booked
signal, connected in GatewayConfig.ready), not the request path, which writes nothing."""

from django.db import connection

from ..models import ApiKey


def latest_use(records) -> dict[int, object]:
    """Each key's latest request time among the records."""
    latest = {}
    for record in records:
        key_id = record.api_key_id
        if key_id and (key_id not in latest or record.created_at > latest[key_id]):
            latest[key_id] = record.created_at
    return latest


def remember_last_use(sender, records, **kwargs) -> None:
    """One UPDATE per batch on PostgreSQL (two array parameters), however many keys it touched (a per-key UPDATE
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
    ids, times = zip(*latest)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS k SET last_used_at = v.used FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, used) "
            "WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.used)",
            [list(ids), list(times)])
