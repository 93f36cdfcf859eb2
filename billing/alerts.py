"""Alerts: an event about an organization's money, sent to its owners by email and to its
webhook URL (if set) from a worker, never on the request path (billing.alert_delivery).

Raising an event writes one AlertDelivery per channel inside the caller's transaction and
hands them to the worker once it commits, so a change that rolls back alerts nobody.

Low balance fires once per crossing: the account's `low_balance_alerted_at` is claimed by a
conditional UPDATE, which two booking workers cannot both win, and cleared (re-armed) when
the balance is back at or above the threshold.
"""

from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from console.tenancy.models import Organization

from . import alert_delivery
from .models import Account, AlertDelivery
from .money import usd

Channel = AlertDelivery.Channel


def balance_changed(account: Account) -> None:
    """Check the low-balance alert of an account whose balance just changed. Call it inside
    the transaction that changed it, with the account locked and `account.balance` new."""
    threshold = account.low_balance_threshold
    if threshold is None:
        return
    now = timezone.now()
    if account.balance < threshold:
        if account.low_balance_alerted_at is not None:
            return  # this crossing has alerted already
        # The conditional update is the claim: of two workers, only one changes the row.
        if Account.objects.filter(pk=account.pk, low_balance_alerted_at__isnull=True).update(
                low_balance_alerted_at=now) == 1:
            account.low_balance_alerted_at = now
            raise_event(account.organization_id, {
                "type": "balance.low", "balance_usd": usd(account.balance), "threshold_usd": usd(threshold)})
    elif account.low_balance_alerted_at is not None:
        Account.objects.filter(pk=account.pk).update(low_balance_alerted_at=None)
        account.low_balance_alerted_at = None


def rearm_low_balance(account_id: int) -> None:
    """A new threshold starts armed: the next balance below it alerts."""
    Account.objects.filter(pk=account_id).update(low_balance_alerted_at=None)


def raise_event(organization_id: int, event: dict, *, once_key: str = "",
                channels=(Channel.EMAIL, Channel.WEBHOOK)) -> list[AlertDelivery]:
    """Write the event's deliveries and send them once the transaction commits; returns
    them. With a `once_key` the event is raised at most once ever ([] if it already was)."""
    if once_key and AlertDelivery.objects.filter(organization_id=organization_id, once_key=once_key).exists():
        return []  # the cheap answer; the unique constraint below is the one that holds
    org = Organization.objects.only("slug", "webhook_url").get(pk=organization_id)
    # The organization second in the payload, as in DESIGN.md: {"type", "organization", ...}.
    payload = {"type": event["type"], "organization": org.slug, **{k: v for k, v in event.items() if k != "type"}}
    wanted = [c for c in channels if c != Channel.WEBHOOK or org.webhook_url]
    try:
        with transaction.atomic():  # a savepoint: a lost claim leaves the caller's transaction usable
            deliveries = [AlertDelivery.objects.create(organization_id=organization_id, event_type=payload["type"],
                                                       once_key=once_key, payload=payload, channel=channel)
                          for channel in wanted]
    except IntegrityError:
        if not once_key:
            raise
        return []
    for delivery in deliveries:
        # Robust: a broker down at that moment must not fail the committed change; the
        # delivery stays pending and the sweep (alert_delivery.resend_overdue) sends it.
        transaction.on_commit(partial(alert_delivery.dispatch, delivery.uuid), robust=True)
    return deliveries


def send_test_event(org: Organization) -> AlertDelivery:
    """A signed {"type": "test"} POST to the webhook URL, to check the receiver."""
    if not org.webhook_url:
        raise ValueError("set a webhook URL first")
    with transaction.atomic():
        (delivery,) = raise_event(org.pk, {"type": "test", "sent_at": timezone.now().isoformat(timespec="seconds")},
                                  channels=(Channel.WEBHOOK,))
    return delivery


def deliveries_of(org):
    """The organization's delivery log, newest first."""
    return AlertDelivery.objects.filter(organization=org).order_by("-created_at", "-id")
