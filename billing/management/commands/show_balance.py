from django.core.management.base import BaseCommand, CommandError

from billing.ledger import balance_of
from billing.money import usd
from console.tenancy.models import Organization


class Command(BaseCommand):
    help = "Print an organization's ledger balance in USD as a plain decimal."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG")

    def handle(self, *args, tenant, **options):
        org = Organization.objects.filter(slug=tenant).first()
        if org is None:
            raise CommandError(f"no organization with slug {tenant!r}")
        self.stdout.write(usd(balance_of(org.pk)))
