from django.core.management.base import BaseCommand, CommandError

from billing.ledger import BillingError, credit, parse_amount
from billing.money import usd
from console.tenancy.models import Organization


class Command(BaseCommand):
    help = "Credit an organization's prepaid balance (USD) with a ledger entry."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG")
        parser.add_argument("amount", metavar="AMOUNT", help="USD, e.g. 10 or 2.50")
        parser.add_argument("--note", default="", metavar="TEXT")

    def handle(self, *args, tenant, amount, note, **options):
        org = Organization.objects.filter(slug=tenant).first()
        if org is None:
            raise CommandError(f"no organization with slug {tenant!r}")
        try:
            entry = credit(org.pk, parse_amount(amount), note=note or "credit from the command line")
        except BillingError as e:
            raise CommandError(str(e))
        self.stdout.write(f"credited {usd(entry.amount)} USD to {org.slug}; balance {usd(entry.balance_after)} USD")
