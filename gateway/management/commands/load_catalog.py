from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gateway.routing.catalog_loader import CatalogError, load_catalog


class Command(BaseCommand):
    help = "Upsert providers, models and prices from a catalog YAML file (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the catalog YAML")

    def handle(self, *args, file, **options):
        path = Path(file)
        try:
            text = path.read_text()
        except OSError as e:
            raise CommandError(f"cannot read {file}: {e.strerror}")
        try:
            report = load_catalog(text)
        except CatalogError as e:
            raise CommandError(f"{file}: {e}")
        for label in report.created:
            self.stdout.write(f"created  {label}")
        for label in report.updated:
            self.stdout.write(f"updated  {label}")
        for label in report.disabled:
            self.stdout.write(f"disabled {label}")
        self.stdout.write(
            f"{len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.disabled)} disabled, {report.unchanged} unchanged"
        )
