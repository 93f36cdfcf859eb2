from django.apps import AppConfig


class PagesConfig(AppConfig):
    """The pages people use. An app only so that its management command (setup_demo) is found."""

    name = "console.pages"
    label = "console_pages"
    verbose_name = "Console pages"
