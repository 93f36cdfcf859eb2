from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.ledger import BillingError, mint_code, parse_amount

MAX_CODES = 1000


class Command(BaseCommand):
    help = "Mint prepaid redeem codes worth AMOUNT USD each; prints one code a line."

    def add_arguments(self, parser):
        parser.add_argument("amount", metavar="AMOUNT", help="USD per code, e.g. 10 or 2.50")
        parser.add_argument("--count", type=int, default=1, metavar="N")
        parser.add_argument("--note", default="", metavar="TEXT")

    def handle(self, *args, amount, count, note, **options):
        if not 1 <= count <= MAX_CODES:
            raise CommandError(f"--count must be between 1 and {MAX_CODES}")
        try:
            value = parse_amount(amount)
            # All or none: a failure halfway must not leave codes nobody was shown.
            with transaction.atomic():
                codes = [mint_code(value, note=note or "minted from the command line") for _ in range(count)]
        except BillingError as e:
            raise CommandError(str(e))
        self.stdout.write("\n".join(code.code for code in codes))
