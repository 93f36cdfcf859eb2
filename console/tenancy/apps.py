from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "console.tenancy"
    # The label the app had when `console` was both the project and the tenant app, so the
    # migrations, the table names and every "console.organization" reference stay valid.
    label = "console"
    verbose_name = "Console"
