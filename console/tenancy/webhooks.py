"""An organization's webhook: the URL its events are POSTed to, and the secret that signs
them. The secret is made here when a URL is set or changed and handed back once; the
organization keeps it only to sign deliveries (HMAC needs the secret itself)."""

import secrets

from django.db import transaction

from . import audit
from .models import Organization

WEBHOOK_SECRET_PREFIX = "whsec_"


@transaction.atomic
def set_webhook_url(org: Organization, url: str, *, actor) -> str | None:
    """Set the URL ("" removes it). Returns the new signing secret when the URL was set or
    changed, else None (the same URL again keeps its secret)."""
    # Locked so two changes at once cannot both believe they set the URL first.
    locked = Organization.objects.select_for_update().get(pk=org.pk)
    if url == locked.webhook_url:
        return None
    new_secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32) if url else None
    # The audit row says a secret was made, never what it is.
    audit.record("webhook.changed", organization=locked, actor=actor, old_url=locked.webhook_url, new_url=url,
                 new_secret=new_secret is not None)
    locked.webhook_url, locked.webhook_secret = url, new_secret or ""
    locked.save(update_fields=["webhook_url", "webhook_secret"])
    org.webhook_url, org.webhook_secret = locked.webhook_url, locked.webhook_secret
    return new_secret
