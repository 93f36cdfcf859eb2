from django.core.management.base import BaseCommand, CommandError

from console.tenancy.models import Organization
from gateway.keys import mint_api_key


class Command(BaseCommand):
    help = "Create an API key for an organization; prints the secret key on stdout, nothing else."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG", help="the organization's slug")
        parser.add_argument("--name", default="", metavar="LABEL", help="a label for the key")

    def handle(self, *args, tenant, name, **options):
        org = Organization.objects.filter(slug=tenant).first()
        if org is None:
            raise CommandError(f"no organization with slug {tenant!r}")
        _, secret = mint_api_key(org, name=name)
        self.stdout.write(secret)
