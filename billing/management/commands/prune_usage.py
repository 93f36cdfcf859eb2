from django.core.management.base import BaseCommand, CommandError

from billing.retention import prune_usage


class Command(BaseCommand):
    help = ("Roll up usage records older than USAGE_RETENTION_DAYS into daily totals and delete them "
            "(the same code as the Celery task). Balances and ledger entries are never touched.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="retention in days for this run (default: USAGE_RETENTION_DAYS)")

    def handle(self, *args, days=None, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be 1 or more")
        result = prune_usage(retention_days=days)
        if result.cutoff is None:
            self.stdout.write("USAGE_RETENTION_DAYS is 0: usage records are kept forever; nothing pruned")
            return
        self.stdout.write(
            f"rolled up {result.records} usage records older than {result.retention_days} days "
            f"(before {result.cutoff.isoformat()}) from {len(result.days)} days into "
            f"{len(result.rollups)} daily rollups"
        )
