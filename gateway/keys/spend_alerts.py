"""A key reaching 80% and 100% of its spend limit alerts its organization (email to the
owners and the webhook, through billing.alerts), once per threshold per budget period.

The booking worker checks after each batch (billing's usage_booked signal, connected in
GatewayConfig.ready), inside the booking transaction: the event is raised with a once-key
naming the key, the period, the limit and the threshold, which the delivery log holds
unique, so two workers or a batch booked again cannot alert twice. A raised limit is a
new limit: its thresholds alert afresh.
"""

from django.utils import timezone

from billing.alerts import raise_event
from billing.budget_periods import period_bounds
from billing.batch_params import id_set
from billing.money import to_units, usd
from billing.queries import key_spent

from ..models import ApiKey

THRESHOLDS_PERCENT = (80, 100)


def alert_on_key_spend(sender, records, **kwargs) -> None:
    key_ids = {record.api_key_id for record in records if record.api_key_id and record.cost > 0}
    if not key_ids:
        return
    now = timezone.now()
    for key in ApiKey.objects.filter(pk__in=id_set(key_ids), spend_limit__gt=0):
        start, end = period_bounds(key.budget_period, now)
        spent = key_spent(key.pk, start, end)
        period = "all" if start is None else start.date().isoformat()
        for percent in THRESHOLDS_PERCENT:
            if spent * 100 < key.spend_limit * percent:
                break
            raise_event(key.organization_id, {
                "type": "key.spend", "key_id": key.pk, "key_name": key.name or key.prefix, "percent": percent,
                "spent_usd": usd(spent), "limit_usd": usd(key.spend_limit), "budget_period": key.budget_period,
            }, once_key=f"key.spend:{key.pk}:{period}:{to_units(key.spend_limit)}:{percent}")
