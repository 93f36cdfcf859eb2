from django.core.management.base import BaseCommand

from billing.reconcile import reconcile


class Command(BaseCommand):
    help = "Book waiting usage events into the ledger now (the same code as the Celery task)."

    def handle(self, *args, **options):
        count = reconcile()
        self.stdout.write(f"reconciled {count} usage events")
