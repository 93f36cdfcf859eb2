from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from console.tenancy.actions import create_organization


class Command(BaseCommand):
    help = "Create an organization (and its owner user if new); prints only the organization's slug."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the organization's display name")
        parser.add_argument("--owner", required=True, metavar="EMAIL", help="the owner's email")

    def handle(self, *args, name, owner, **options):
        if not name.strip():
            raise CommandError("NAME must not be empty")
        try:
            validate_email(owner.strip())
        except ValidationError:
            raise CommandError(f"--owner must be an email address, not {owner!r}")
        org = create_organization(name, owner)
        self.stdout.write(org.slug)
