from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from console.tenancy.signals import organization_created

        from .signals import open_account_of_new_organization

        organization_created.connect(open_account_of_new_organization, dispatch_uid="billing.open_account")
