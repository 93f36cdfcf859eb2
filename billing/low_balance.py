"""The balance below which an organization wants to hear about it, set as an audited action
(the API's PATCH /api/v1/organization and the console's Alerts page call it). The alert
itself is billing.alerts."""

from decimal import Decimal

from django.db import transaction

from console.tenancy import audit

from . import alerts
from .ledger import BillingError, account_for
from .models import Account


def set_low_balance_threshold(organization_id: int, threshold: Decimal | None, *, actor=None) -> Account:
    """None turns the alert off."""
    if threshold is not None and threshold < 0:
        raise BillingError("a low-balance threshold is zero or more")
    with transaction.atomic():
        # Locked so the audit row's old value is the one this change replaced.
        account = Account.objects.select_for_update().get(pk=account_for(organization_id).pk)
        previous = account.low_balance_threshold
        if previous != threshold:
            account.low_balance_threshold = threshold
            account.save(update_fields=["low_balance_threshold", "updated_at"])
            alerts.rearm_low_balance(account.pk)
            audit.record("low_balance_threshold.changed", organization=organization_id, actor=actor,
                         old_threshold=previous, new_threshold=threshold)
    return account
