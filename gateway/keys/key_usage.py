"""When each key was last used. The booking worker keeps it (billing's usage_booked
signal, connected in GatewayConfig.ready), not the request path, which writes nothing."""

from collections import defaultdict

from ..models import ApiKey


def remember_last_use(sender, records, **kwargs) -> None:
    latest = defaultdict(lambda: None)
    for record in records:
        if record.api_key_id and (latest[record.api_key_id] is None or record.created_at > latest[record.api_key_id]):
            latest[record.api_key_id] = record.created_at
    for key_id, when in latest.items():
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=when).update(last_used_at=when)
