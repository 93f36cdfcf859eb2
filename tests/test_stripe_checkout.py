"""Starting a top-up on the billing page: the real `stripe` library creates the Checkout
session on the loopback stand-in, and the owner is sent to the session's page."""

import os
import subprocess
import sys
from decimal import Decimal

import pytest

from billing.ledger import balance_of
from billing.models import TopUp
from billing.stripe_topups import credit_session
from tests.console.conftest import alice, as_alice, as_bob, as_charlie, as_dave, bob, charlie, dave  # noqa: F401
from tests.stripe_standin import standin, stripe_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def checkout_requests(standin):
    return [form for method, path, form in standin.requests if (method, path) == ("POST", "/v1/checkout/sessions")]


def test_the_owner_is_sent_to_a_checkout_session(as_alice, org, standin):
    resp = as_alice.post("/billing/topup/", {"amount": "25.50"})
    assert resp.status_code == 302
    (form,) = checkout_requests(standin)
    (session,) = standin.sessions.values()
    assert resp["Location"] == session["url"]
    assert form["mode"] == "payment"
    assert form["client_reference_id"] == org.slug
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][unit_amount]"] == "2550"
    assert form["customer_email"] == "alice@alpha.example"
    assert form["success_url"] == "http://testserver/billing/?topup=success"
    assert form["cancel_url"] == "http://testserver/billing/?topup=cancelled"
    topup = TopUp.objects.get(session_id=session["id"])
    assert (topup.organization, topup.amount, topup.status) == (org, Decimal("25.50"), TopUp.Status.PENDING)
    assert balance_of(org.pk) == 100  # nothing is credited before Stripe says it is paid

    page = as_alice.get("/billing/?topup=success").content.decode()
    assert 'id="topup-returned"' in page and "Stripe has your payment" in page
    assert f'data-topup-id="{topup.pk}"' in page and "awaiting payment on Stripe" in page


def test_the_return_address_is_never_the_callers(as_alice, standin):
    as_alice.post("/billing/topup/?next=https://evil.example/",
                  {"amount": "10", "success_url": "https://evil.example/"})
    (form,) = checkout_requests(standin)
    assert "evil" not in form["success_url"] + form["cancel_url"]
    # A forged Host header is refused before any session is made.
    assert as_alice.post("/billing/topup/", {"amount": "10"}, HTTP_HOST="evil.example").status_code == 400
    assert len(checkout_requests(standin)) == 1


@pytest.mark.parametrize("amount", ["4.99", "1000.01", "12.345", "-5", "ten", ""])
def test_amounts_outside_the_bounds_or_cents_are_refused(as_alice, standin, amount):
    resp = as_alice.post("/billing/topup/", {"amount": amount}, follow=True)
    assert resp.redirect_chain[-1][0] == "/billing/"
    assert "Could not start the top-up" in resp.content.decode() or "Enter an amount" in resp.content.decode()
    assert checkout_requests(standin) == [] and not TopUp.objects.exists()


def test_the_bounds_come_from_settings(as_alice, standin, settings):
    settings.TOPUP_MIN_USD, settings.TOPUP_MAX_USD = Decimal("1"), Decimal("2")
    assert as_alice.post("/billing/topup/", {"amount": "2.50"}).status_code == 302
    assert not TopUp.objects.exists()
    assert as_alice.post("/billing/topup/", {"amount": "1.25"}).status_code == 302
    assert TopUp.objects.get().amount == Decimal("1.25")


@pytest.mark.parametrize("who", ["as_bob", "as_dave"])
def test_only_owners_can_top_up(who, request, standin):
    browser = request.getfixturevalue(who)
    assert browser.post("/billing/topup/", {"amount": "10"}).status_code == 403
    assert checkout_requests(standin) == []


def test_it_is_off_and_hidden_without_stripe(as_alice, settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""
    page = as_alice.get("/billing/")
    assert 'id="topup-form"' not in page.content.decode()
    assert "checkout.stripe.com" not in page["Content-Security-Policy"]
    assert as_alice.post("/billing/topup/", {"amount": "10"}).status_code == 404


def test_the_page_lets_the_form_reach_stripe(as_alice, standin):
    page = as_alice.get("/billing/")
    assert 'id="topup-form"' in page.content.decode()
    assert "form-action 'self' https://checkout.stripe.com" in page["Content-Security-Policy"]


def test_stripe_failing_is_an_error_message_not_a_500(as_alice, standin):
    standin.fail_next = 10
    resp = as_alice.post("/billing/topup/", {"amount": "10"}, follow=True)
    assert "Stripe could not start the payment" in resp.content.decode()
    assert not TopUp.objects.exists()


def test_the_receipt_comes_from_stripe_once(as_alice, as_charlie, org, standin):
    as_alice.post("/billing/topup/", {"amount": "10"})
    (session,) = standin.sessions.values()
    credit_session(standin.pay(session["id"]))
    topup = TopUp.objects.get()
    page = as_alice.get("/billing/").content.decode()
    assert f"/billing/topups/{topup.pk}/receipt/" in page and ">Paid<" in page
    resp = as_alice.get(f"/billing/topups/{topup.pk}/receipt/")
    assert resp.status_code == 302 and resp["Location"] == f"{standin.url}/receipts/{session['payment_intent']}"
    assert as_alice.get(f"/billing/topups/{topup.pk}/receipt/")["Location"] == resp["Location"]
    asked = [p for m, p, _ in standin.requests if p.startswith("/v1/payment_intents/")]
    assert len(asked) == 1  # kept after the first time
    assert as_charlie.get(f"/billing/topups/{topup.pk}/receipt/").status_code == 404


def test_a_pending_top_up_has_no_receipt(as_alice, standin):
    as_alice.post("/billing/topup/", {"amount": "10"})
    assert as_alice.get(f"/billing/topups/{TopUp.objects.get().pk}/receipt/").status_code == 404


@pytest.mark.parametrize("bounds", [{"TOPUP_MIN_USD": "1.234"}, {"TOPUP_MAX_USD": "ten"},
                                    {"TOPUP_MIN_USD": "0"}, {"TOPUP_MIN_USD": "50", "TOPUP_MAX_USD": "20"}])
def test_bounds_that_are_not_whole_cents_stop_the_process(bounds):
    env = {**os.environ, **bounds, "DJANGO_SETTINGS_MODULE": "console.settings"}
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; settings.TOPUP_MIN_USD"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "ImproperlyConfigured" in out.stderr and "TOPUP_M" in out.stderr
