from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self):
        from billing.signals import usage_booked, usage_pruned

        from .keys.key_usage import remember_last_use
        from .keys.spend_alerts import alert_on_key_spend
        from .stored_responses import prune_stored_responses

        usage_booked.connect(remember_last_use, dispatch_uid="gateway.remember_last_use")
        usage_booked.connect(alert_on_key_spend, dispatch_uid="gateway.alert_on_key_spend")
        usage_pruned.connect(prune_stored_responses, dispatch_uid="gateway.prune_stored_responses")
