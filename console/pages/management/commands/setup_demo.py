import secrets
from decimal import Decimal
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from billing.ledger import balance_of, credit
from billing.money import usd
from console.tenancy.actions import create_organization
from console.tenancy.models import Organization
from gateway.keys.api_keys import find_key, key_status, mint_api_key, revoke_api_key
from gateway.models import ApiKey

DEMO_EMAIL = "demo@example.com"
DEMO_SLUG = "demo"
DEMO_CREDIT_USD = Decimal("10")
KEY_NAME = "make run"


def _remembered(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _remember(path: Path, value: str) -> None:
    # The demo's login and key live beside the SQLite file and the generated SECRET_KEY,
    # readable only by their owner, so a restart prints the same ones.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(value)


class Command(BaseCommand):
    help = "Prepare a laptop install: a demo organization, a login and a fresh API key (all printed)."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the gateway will listen")
        parser.add_argument("--state-dir", type=Path, default=None,
                            help="where the demo login and key are kept between runs (default: var/)")

    @transaction.atomic
    def handle(self, *args, base_url, state_dir, **options):
        state_dir = state_dir or settings.VAR_DIR
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None:
            org = create_organization("Demo", DEMO_EMAIL)
            if org.slug != DEMO_SLUG:
                org.slug = DEMO_SLUG
                org.save(update_fields=["slug"])
            credit(org.pk, DEMO_CREDIT_USD, note="demo credit from make run", reference=f"demo:{org.pk}")
        user = get_user_model().objects.get(email=DEMO_EMAIL)
        # A laptop's demo login: generated on the first run, so no default password ever
        # exists, and kept, so a restart does not log the browser out of a known password.
        password = _remembered(state_dir / "demo-password")
        if password is None or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            _remember(state_dir / "demo-password", password)
        user.is_staff = user.is_superuser = True
        user.save()
        # The console asks for a verified email before login; the demo's is taken as read.
        EmailAddress.objects.update_or_create(user=user, email=DEMO_EMAIL,
                                              defaults={"verified": True, "primary": True})
        secret = self._demo_key(org, state_dir / "demo-api-key")
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

    def _demo_key(self, org, path: Path) -> str:
        """The key printed last time while it still works; otherwise a new one, and every
        older demo key revoked, so restarts never pile up live secrets."""
        secret = _remembered(path)
        identity = find_key(secret) if secret else None
        if identity is not None and key_status(ApiKey.objects.get(pk=identity.key_id)) == "active":
            return secret
        for old in ApiKey.objects.filter(organization=org, name=KEY_NAME, revoked_at__isnull=True):
            revoke_api_key(old)
        _, secret = mint_api_key(org, name=KEY_NAME)
        _remember(path, secret)
        return secret
