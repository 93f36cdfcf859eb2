from django.core.management.base import BaseCommand, CommandError

from console.tenancy.models import Organization
from gateway.keys.api_keys import create_management_key, mint_api_key
from gateway.models import ApiKey

KINDS = {"standard": ApiKey.Kind.STANDARD, "management": ApiKey.Kind.MANAGEMENT}


class Command(BaseCommand):
    help = ("Create an API key for an organization (an inference key \"sk-…\", or with --kind management "
            "a management API key \"mk-…\"); prints the secret key on stdout, nothing else.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG", help="the organization's slug")
        parser.add_argument("--name", default="", metavar="LABEL", help="a label for the key")
        parser.add_argument("--kind", default="standard", choices=sorted(KINDS),
                            help="standard (calls /v1, the default) or management (calls /api/v1)")

    def handle(self, *args, tenant, name, kind, **options):
        org = Organization.objects.filter(slug=tenant).first()
        if org is None:
            raise CommandError(f"no organization with slug {tenant!r}")
        if KINDS[kind] == ApiKey.Kind.MANAGEMENT:
            _, secret = create_management_key(org, name=name)
        else:
            _, secret = mint_api_key(org, name=name)
        self.stdout.write(secret)
