from django.apps import AppConfig


class ManagementApiConfig(AppConfig):
    name = "console.api"
    label = "management_api"
    verbose_name = "Management API"
