"""POST /billing/stripe/webhook against the live server, with events signed as Stripe signs
them: valid, invalid, stale, replayed, out of order, and two deliveries at once."""

import threading
import time
from decimal import Decimal

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from billing.ledger import balance_of
from billing.models import LedgerEntry, TopUp
from billing.stripe_topups import start_checkout
from console.tenancy.models import AuditEvent
from tests.stripe_standin import WEBHOOK_SECRET, event, sign, standin, stripe_server  # noqa: F401 (fixtures)

START = Decimal("100")  # the org fixture's credit


def post(live_server, payload: str, signature: str | None = "sign"):
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(payload)
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return requests.post(f"{live_server.url}/billing/stripe/webhook", data=payload.encode(), headers=headers,
                         timeout=10)


def started(org, amount="20") -> TopUp:
    alice = get_user_model().objects.get(email="alice@alpha.example")
    topup, _ = start_checkout(org, Decimal(amount), user=alice, return_url="http://testserver/billing/")
    return topup


def paid_event(standin, topup, kind="checkout.session.completed", event_id=None) -> str:
    return event(kind, standin.pay(topup.session_id), event_id)


def stripe_entries(org):
    return list(LedgerEntry.objects.filter(account__organization=org, reference__startswith="stripe:")
                .order_by("id").values_list("kind", "amount", "reference"))


def test_it_is_off_unless_both_secrets_are_set(live_server, settings, org):
    payload = event("checkout.session.completed", {"id": "cs_x"})
    assert post(live_server, payload).status_code == 404
    settings.STRIPE_SECRET_KEY = "sk_test_only_half"
    assert post(live_server, payload).status_code == 404


def test_a_paid_session_credits_its_amount_once(live_server, standin, org):
    topup = started(org, "20.50")
    payload = paid_event(standin, topup)
    resp = post(live_server, payload)
    assert resp.status_code == 200 and resp.json()["result"] == "credited"
    assert balance_of(org.pk) == START + Decimal("20.50")
    assert stripe_entries(org) == [("credit", Decimal("20.5"), f"stripe:{topup.session_id}")]
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.PAID and topup.payment_intent.startswith("pi_")
    audit = AuditEvent.objects.get(action="balance.credited", target=f"stripe:{topup.session_id}")
    assert audit.organization_id == org.pk and audit.details["amount"] == "20.5"

    # Stripe delivers again (the same event), or sends the async success after all.
    assert post(live_server, payload).status_code == 200
    again = paid_event(standin, topup, kind="checkout.session.async_payment_succeeded")
    assert post(live_server, again).json()["result"] == "already credited"
    assert balance_of(org.pk) == START + Decimal("20.50")
    assert len(stripe_entries(org)) == 1


BAD_SIGNATURES = {
    "missing": lambda payload: None,
    "garbage": lambda payload: "garbage",
    "no timestamp": lambda payload: "t=notanumber,v1=abc",
    "another body's": lambda payload: sign("{}"),
    "another secret's": lambda payload: sign(payload, secret="whsec_someone_else"),
    "another scheme": lambda payload: sign(payload).replace("v1=", "v0="),
}


@pytest.mark.parametrize("bad", BAD_SIGNATURES)
def test_a_bad_signature_is_400_and_changes_nothing(live_server, standin, org, bad):
    payload = paid_event(standin, started(org))
    resp = post(live_server, payload, BAD_SIGNATURES[bad](payload))
    assert resp.status_code == 400
    assert balance_of(org.pk) == START and stripe_entries(org) == []


def test_a_tampered_body_is_400(live_server, standin, org):
    payload = paid_event(standin, started(org, "5"))
    signature = sign(payload)
    tampered = payload.replace('"amount_total": 500', '"amount_total": 50000')
    assert tampered != payload
    assert post(live_server, tampered, signature).status_code == 400
    assert balance_of(org.pk) == START


def test_a_stale_signature_is_400_within_tolerance_is_not(live_server, standin, org):
    topup = started(org)
    payload = paid_event(standin, topup)
    assert post(live_server, payload, sign(payload, timestamp=int(time.time()) - 301)).status_code == 400
    assert balance_of(org.pk) == START
    assert post(live_server, payload, sign(payload, timestamp=int(time.time()) - 290)).status_code == 200
    assert balance_of(org.pk) == START + 20


def test_the_signature_is_the_one_the_library_makes(standin):
    import stripe

    payload = event("ping", {})
    now = int(time.time())
    assert sign(payload, timestamp=now) == stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET,
                                                                                              timestamp=now)


def test_unknown_events_and_unpaid_sessions_answer_200_and_change_nothing(live_server, standin, org):
    assert post(live_server, event("customer.created", {"id": "cus_1"})).json()["result"] == "ignored"
    topup = started(org)
    session = dict(standin.sessions[topup.session_id])  # completed, but the bank transfer is not in yet
    session.update(status="complete", payment_status="unpaid")
    assert post(live_server, event("checkout.session.completed", session)).status_code == 200
    euro = {**standin.pay(topup.session_id), "currency": "eur"}
    assert post(live_server, event("checkout.session.completed", euro)).status_code == 200
    assert balance_of(org.pk) == START
    assert TopUp.objects.get(pk=topup.pk).status == TopUp.Status.PENDING
    # The payment succeeds later: that event credits.
    assert post(live_server, paid_event(standin, topup, "checkout.session.async_payment_succeeded")).status_code == 200
    assert balance_of(org.pk) == START + 20


def test_a_session_for_no_organization_here_credits_nothing(live_server, standin, org, other_org):
    topup = started(org)
    session = standin.pay(topup.session_id)
    for slug in ("no-such-org", other_org.slug):
        assert post(live_server, event("checkout.session.completed", {**session, "client_reference_id": slug})
                    ).status_code == 200
    assert balance_of(org.pk) == START and balance_of(other_org.pk) == 0


def test_refunds_debit_only_what_is_newly_refunded(live_server, standin, org):
    topup = started(org, "20")
    post(live_server, paid_event(standin, topup))
    partial = event("charge.refunded", standin.refund(topup.session_id, 500))
    full = event("charge.refunded", standin.refund(topup.session_id, 1500))
    assert post(live_server, partial).json()["result"] == "debited"
    assert balance_of(org.pk) == START + 15
    assert TopUp.objects.get(pk=topup.pk).status == TopUp.Status.PAID
    assert post(live_server, partial).json()["result"] == "already debited"  # replayed
    assert post(live_server, full).json()["result"] == "debited"
    assert post(live_server, full).status_code == 200
    assert balance_of(org.pk) == START
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.REFUNDED and topup.refunded == 20
    kinds = [(kind, amount) for kind, amount, _ in stripe_entries(org)]
    assert kinds == [("credit", Decimal(20)), ("refund", Decimal(-5)), ("refund", Decimal(-15))]
    assert AuditEvent.objects.filter(action="balance.adjusted", organization=org).count() == 2


def test_a_later_refund_event_arriving_first_makes_the_earlier_one_a_no_op(live_server, standin, org):
    topup = started(org, "20")
    post(live_server, paid_event(standin, topup))
    first = event("charge.refunded", standin.refund(topup.session_id, 500))
    second = event("charge.refunded", standin.refund(topup.session_id, 700))  # 12 USD refunded in all
    assert post(live_server, second).status_code == 200
    assert post(live_server, first).json()["result"] == "already debited"
    assert balance_of(org.pk) == START + 20 - 12


def test_a_refund_before_its_payment_event_is_matched_through_stripe(live_server, standin, org):
    topup = started(org, "20")
    completed = paid_event(standin, topup)  # paid on Stripe; this event is still on its way
    refunded = event("charge.refunded", standin.refund(topup.session_id, 2000))
    assert post(live_server, refunded).json()["result"] == "debited"
    assert balance_of(org.pk) == START  # credited from Stripe's session, then debited
    assert post(live_server, completed).json()["result"] == "already credited"
    assert balance_of(org.pk) == START
    assert [kind for kind, _, _ in stripe_entries(org)] == ["credit", "refund"]
    assert ("GET", "/v1/checkout/sessions", {"payment_intent": topup_intent(standin, topup), "limit": "1"}) \
        in standin.requests


def topup_intent(standin, topup) -> str:
    return standin.sessions[topup.session_id]["payment_intent"]


def test_a_refund_of_someone_elses_charge_is_ignored(live_server, standin, org):
    charge = {"id": "ch_other", "object": "charge", "payment_intent": "pi_not_ours", "currency": "usd",
              "amount": 900, "amount_refunded": 900}
    assert post(live_server, event("charge.refunded", charge)).json()["result"] == "not a top-up"
    assert balance_of(org.pk) == START


def test_stripe_down_while_matching_a_refund_asks_for_a_redelivery(live_server, standin, org):
    topup = started(org, "20")
    standin.pay(topup.session_id)
    refunded = event("charge.refunded", standin.refund(topup.session_id, 2000))
    standin.fail_next = 10  # more than the library's retries
    assert post(live_server, refunded).status_code == 503
    assert balance_of(org.pk) == START and stripe_entries(org) == []
    standin.fail_next = 0
    assert post(live_server, refunded).status_code == 200


def test_two_deliveries_at_once_credit_once(live_server, standin, org):
    if connection.vendor != "postgresql":
        pytest.skip("row locks between server threads need PostgreSQL")
    topup = started(org, "20")
    payload = paid_event(standin, topup)
    barrier = threading.Barrier(4)
    answers = []

    def deliver():
        barrier.wait()
        answers.append(post(live_server, payload))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(r.status_code for r in answers) == [200] * 4
    assert sorted(r.json()["result"] for r in answers) == ["already credited"] * 3 + ["credited"]
    assert balance_of(org.pk) == START + 20
    assert len(stripe_entries(org)) == 1


def test_the_webhook_needs_post_and_no_csrf_token(live_server, standin):
    assert requests.get(f"{live_server.url}/billing/stripe/webhook", timeout=5).status_code == 405
