"""Stripe Checkout top-ups: an owner pays on Stripe, the signed webhook credits the balance.

Stripe is the only source of truth for what was paid. The success URL a browser comes back
to proves nothing; only a verified `checkout.session.*` event credits, and only once: the
top-up row is locked while its event is handled, and the ledger's unique reference
(`stripe:<session id>`) refuses a second credit even if two deliveries raced past the lock.

Refunds: `charge.amount_refunded` is cumulative, so each `charge.refunded` event debits only
what was refunded beyond what the top-up has already given back; replays and events that
arrive out of order debit nothing twice. A refund that overtakes its payment's own event is
matched by asking Stripe for the session of its payment intent.
"""

import logging
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import transaction

from console.tenancy.models import Organization

from . import ledger
from .models import TopUp

log = logging.getLogger("mixgateway.billing")

CENT = Decimal("0.01")
CREDITING_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUND_EVENT = "charge.refunded"
WEBHOOK_TOLERANCE_SECONDS = 300
CHECKOUT_ORIGIN = "https://checkout.stripe.com"  # where Stripe's hosted payment pages live


class TopUpError(ValueError):
    pass


class StripeUnavailable(Exception):
    """Stripe's API could not be asked; the webhook answers 503 so Stripe delivers again."""


def enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def client() -> stripe.StripeClient:
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses=base, max_network_retries=1)


def to_cents(amount: Decimal) -> int:
    return int(amount / CENT)


def from_cents(cents: int) -> Decimal:
    return Decimal(cents) * CENT


def check_amount(amount: Decimal) -> Decimal:
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise TopUpError("enter an amount in whole cents, e.g. 20 or 12.50")
    if not settings.TOPUP_MIN_USD <= amount <= settings.TOPUP_MAX_USD:
        raise TopUpError(f"a top-up is between {settings.TOPUP_MIN_USD} and {settings.TOPUP_MAX_USD} USD")
    return amount


def start_checkout(organization: Organization, amount: Decimal, *, user, return_url: str) -> tuple[TopUp, str]:
    """Create a Checkout session for `amount` USD, remember it as a pending top-up and
    return it with the Stripe page to send the payer to. `return_url` is our own billing
    page (never taken from the request): Stripe sends the payer back there either way."""
    amount = check_amount(amount)
    params = {
        "mode": "payment",
        "client_reference_id": organization.slug,
        "line_items": [{"quantity": 1, "price_data": {
            "currency": "usd", "unit_amount": to_cents(amount),
            "product_data": {"name": f"{settings.SITE_NAME} credit for {organization.name}"},
        }}],
        "metadata": {"organization": organization.slug},
        "success_url": f"{return_url}?topup=success",
        "cancel_url": f"{return_url}?topup=cancelled",
    }
    if user.email:
        params["customer_email"] = user.email
    try:
        session = client().v1.checkout.sessions.create(params=params)
    except stripe.StripeError as exc:
        log.warning("stripe checkout session not created: %s", type(exc).__name__)
        raise TopUpError("Stripe could not start the payment; try again in a minute") from exc
    topup = TopUp.objects.create(organization=organization, session_id=session.id, amount=amount, created_by=user)
    return topup, session.url


def verified_event(payload: bytes, signature: str | None) -> dict:
    """The event as a plain dict, or stripe.SignatureVerificationError / ValueError."""
    event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET,
                                           tolerance=WEBHOOK_TOLERANCE_SECONDS)
    return event.to_dict()


def handle_event(event: dict) -> str:
    """Apply one verified event; returns what was done, for the log and the webhook's answer."""
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    if kind in CREDITING_EVENTS:
        return credit_session(obj)
    if kind == REFUND_EVENT:
        return debit_refund(obj)
    return "ignored"


def credit_session(session: dict) -> str:
    if session.get("payment_status") != "paid" or session.get("currency") != "usd":
        return "not paid in usd"
    organization = Organization.objects.filter(slug=session.get("client_reference_id") or "").first()
    if organization is None:
        log.warning("stripe session %s names no organization here", session.get("id"))
        return "unknown organization"
    paid = from_cents(int(session["amount_total"]))
    if paid <= 0:
        return "nothing paid"  # e.g. a 100% discount: there is no money to credit
    with transaction.atomic():
        topup, _ = TopUp.objects.get_or_create(session_id=session["id"],
                                               defaults={"organization": organization, "amount": paid})
        # Two deliveries of one event queue here; the second finds the top-up already paid.
        topup = TopUp.objects.select_for_update().get(pk=topup.pk)
        if topup.organization_id != organization.pk:
            log.warning("stripe session %s names another organization than its top-up", topup.session_id)
            return "organization mismatch"
        if topup.status != TopUp.Status.PENDING:
            return "already credited"
        ledger.credit(organization.pk, paid, note=f"Stripe top-up {topup.session_id}",
                      reference=f"stripe:{topup.session_id}")
        topup.status = TopUp.Status.PAID
        topup.amount = paid
        topup.payment_intent = session.get("payment_intent") or ""
        topup.save(update_fields=["status", "amount", "payment_intent", "updated_at"])
    return "credited"


def _session_of_payment(payment_intent: str) -> dict | None:
    try:
        found = client().v1.checkout.sessions.list(params={"payment_intent": payment_intent, "limit": 1})
    except stripe.StripeError as exc:
        raise StripeUnavailable(type(exc).__name__) from exc
    return found.data[0].to_dict() if found.data else None


def debit_refund(charge: dict) -> str:
    payment_intent = charge.get("payment_intent") or ""
    if not payment_intent or charge.get("currency") != "usd":
        return "not a usd payment"
    if not TopUp.objects.filter(payment_intent=payment_intent).exists():
        # The refund overtook its payment's event (or the charge is not a top-up at all).
        session = _session_of_payment(payment_intent)
        if session is None or not TopUp.objects.filter(session_id=session["id"]).exists():
            return "not a top-up"
        credit_session(session)
        if not TopUp.objects.filter(payment_intent=payment_intent).exists():
            return "top-up not paid"
    refunded_total = from_cents(int(charge.get("amount_refunded") or 0))
    with transaction.atomic():
        topup = TopUp.objects.select_for_update().get(payment_intent=payment_intent)
        newly_refunded = refunded_total - topup.refunded
        if newly_refunded <= 0:
            return "already debited"
        # One reference per cumulative total: a replay of this event can never debit again.
        ledger.refund(topup.organization_id, newly_refunded, note=f"Stripe refund of top-up {topup.session_id}",
                      reference=f"stripe:{charge['id']}:refunded:{to_cents(refunded_total)}")
        topup.refunded = refunded_total
        if refunded_total >= topup.amount:
            topup.status = TopUp.Status.REFUNDED
        topup.receipt_url = charge.get("receipt_url") or topup.receipt_url
        topup.save(update_fields=["refunded", "status", "receipt_url", "updated_at"])
    return "debited"


def receipt_url(topup: TopUp) -> str:
    """Stripe's receipt for a paid top-up, asked for once and kept."""
    if topup.receipt_url or not topup.payment_intent:
        return topup.receipt_url
    try:
        intent = client().v1.payment_intents.retrieve(topup.payment_intent, params={"expand": ["latest_charge"]})
    except stripe.StripeError as exc:
        raise StripeUnavailable(type(exc).__name__) from exc
    charge = intent.latest_charge
    url = getattr(charge, "receipt_url", None) if charge is not None and not isinstance(charge, str) else None
    if url and url.startswith(("https://", "http://")):
        TopUp.objects.filter(pk=topup.pk).update(receipt_url=url)
        topup.receipt_url = url
    return topup.receipt_url
