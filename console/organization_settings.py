"""An organization's alert settings: the low-balance threshold and the webhook URL.

The webhook's signing secret is made here when a URL is set or changed, and handed back
once; the organization keeps it only to sign deliveries (HMAC needs the secret itself).
"""

import secrets

from django.db import transaction

from . import audit
from .models import Organization

WEBHOOK_SECRET_PREFIX = "whsec_"
UNCHANGED = object()


@transaction.atomic
def set_alert_settings(org: Organization, *, actor, low_balance_threshold=UNCHANGED,
                       webhook_url=UNCHANGED) -> str | None:
    """Change what is given (a threshold Decimal or None; a URL or ""), audited in one row.
    Returns the new webhook secret when the URL was set or changed, else None."""
    # Locked so two changes at once cannot both believe they set the URL first.
    locked = Organization.objects.select_for_update().get(pk=org.pk)
    details, new_secret = {}, None
    if low_balance_threshold is not UNCHANGED and low_balance_threshold != locked.low_balance_threshold:
        details.update(old_threshold=locked.low_balance_threshold, new_threshold=low_balance_threshold)
        locked.low_balance_threshold = low_balance_threshold
    if webhook_url is not UNCHANGED and webhook_url != locked.webhook_url:
        details.update(old_webhook_url=locked.webhook_url, new_webhook_url=webhook_url)
        locked.webhook_url = webhook_url
        new_secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32) if webhook_url else None
        locked.webhook_secret = new_secret or ""
        # The audit row says a secret was made, never what it is.
        details["webhook_secret_rotated"] = new_secret is not None
    if details:
        locked.save(update_fields=["low_balance_threshold", "webhook_url", "webhook_secret"])
        audit.record("organization.alerts_changed", organization=locked, actor=actor, **details)
    org.low_balance_threshold, org.webhook_url, org.webhook_secret = (
        locked.low_balance_threshold, locked.webhook_url, locked.webhook_secret)
    return new_secret
