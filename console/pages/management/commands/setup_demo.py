import secrets
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from billing.ledger import balance_of, credit
from billing.money import usd
from console.tenancy.actions import create_organization
from console.tenancy.models import Organization
from gateway.keys import mint_api_key

DEMO_EMAIL = "demo@example.com"
DEMO_SLUG = "demo"
DEMO_CREDIT_USD = Decimal("10")


class Command(BaseCommand):
    help = "Prepare a laptop install: a demo organization, a login and a fresh API key (all printed)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the gateway will listen")

    @transaction.atomic
    def handle(self, *args, base_url, **options):
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None:
            org = create_organization("Demo", DEMO_EMAIL)
            if org.slug != DEMO_SLUG:
                org.slug = DEMO_SLUG
                org.save(update_fields=["slug"])
            credit(org.pk, DEMO_CREDIT_USD, note="demo credit from make run", reference=f"demo:{org.pk}")
        user = get_user_model().objects.get(email=DEMO_EMAIL)
        # A laptop's demo login: a new password each run, so no default password ever exists.
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        # The console asks for a verified email before login; the demo's is taken as read.
        EmailAddress.objects.update_or_create(user=user, email=DEMO_EMAIL,
                                              defaults={"verified": True, "primary": True})
        _, secret = mint_api_key(org, name="make run")
        self.stdout.write(
            f"""
MixGateway demo is ready.
  Console   {base_url}/          login {DEMO_EMAIL} / {password}
  Admin     {base_url}/admin/    same login
  API key   {secret}
  Balance   {usd(balance_of(org.pk))} USD (python manage.py credit --tenant {DEMO_SLUG} AMOUNT adds more)

Try it:
  curl {base_url}/v1/chat/completions \\
    -H "Authorization: Bearer {secret}" -H "Content-Type: application/json" \\
    -d '{{"model": "demo:echo", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
"""
        )
