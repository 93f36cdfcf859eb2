"""A new user, without an operator: sign up, pay against the Stripe stand-in, see the
credit, set a low-balance alert, call the gateway with the openai SDK, and get the alert as
a signed webhook. And the embedded default's signup credit,
which lets a new sign-up call demo:echo before paying anything."""

import os
import re
import subprocess
import sys
from decimal import Decimal

import openai
import pytest
import requests

from billing.ledger import balance_of
from console.tenancy.models import Membership
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import balance
from tests.stripe_standin import event, sign, standin, stripe_server  # noqa: F401 (fixtures)
from tests.webhook_receiver import WebhookReceiver, verify

PASSWORD = "a long passphrase 42"


def csrf_token(page: requests.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def sign_up(live_server, mailoutbox, email: str) -> requests.Session:
    """A browser that signed up as `email` and confirmed the address from the mail."""
    browser = requests.Session()
    form = browser.get(f"{live_server.url}/accounts/signup/", timeout=10)
    resp = browser.post(f"{live_server.url}/accounts/signup/", timeout=10, data={
        "csrfmiddlewaretoken": csrf_token(form), "email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert resp.status_code == 200, resp.text[:500]
    link = re.search(r"http://[^/\s]+(/accounts/confirm-email/\S+/)", mailoutbox[-1].body).group(1)
    confirm = browser.get(f"{live_server.url}{link}", timeout=10)
    resp = browser.post(f"{live_server.url}{link}", data={"csrfmiddlewaretoken": csrf_token(confirm)}, timeout=10)
    assert resp.status_code == 200 and resp.url.endswith("/dashboard/")
    return browser


def gateway(live_server, org):
    _, secret = mint_api_key(org, name="first")
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, timeout=20)


def echo(sdk):
    return sdk.chat.completions.create(model="demo:echo", messages=[{"role": "user", "content": "hello"}],
                                       max_tokens=16)


def test_sign_up_pay_and_call_without_an_operator(live_server, mailoutbox, catalog, standin, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    browser = sign_up(live_server, mailoutbox, "erin@new.example")
    org = Membership.objects.get(user__email="erin@new.example").organization
    sdk = gateway(live_server, org)
    with pytest.raises(openai.RateLimitError) as refused:
        echo(sdk)
    assert refused.value.code == "insufficient_quota"

    dashboard = browser.get(f"{live_server.url}/dashboard/", timeout=10).text
    assert 'id="add-money"' in dashboard and "Top up by card" in dashboard

    billing = browser.get(f"{live_server.url}/billing/", timeout=10)
    resp = browser.post(f"{live_server.url}/billing/topup/", data={
        "csrfmiddlewaretoken": csrf_token(billing), "amount": "20"}, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    (session,) = standin.sessions.values()
    assert resp.headers["Location"] == session["url"] and session["client_reference_id"] == org.slug
    assert ">Pending<" in browser.get(f"{live_server.url}/billing/", timeout=10).text

    # The payer pays on Stripe; Stripe signs and delivers the event.
    payload = event("checkout.session.completed", standin.pay(session["id"]))
    delivered = requests.post(f"{live_server.url}/billing/stripe/webhook", data=payload.encode(), timeout=10,
                              headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"})
    assert delivered.status_code == 200

    page = browser.get(f"{live_server.url}/billing/?topup=success", timeout=10).text
    assert '<div class="value" id="balance">20</div>' in page and ">Paid<" in page
    assert 'id="add-money"' not in browser.get(f"{live_server.url}/dashboard/", timeout=10).text

    # Hear before the money runs out: a threshold just under the balance, so the first
    # call crosses it, and a webhook to hear it on.
    with WebhookReceiver() as receiver:
        alerts = browser.get(f"{live_server.url}/alerts/", timeout=10)
        saved = browser.post(f"{live_server.url}/alerts/settings/", timeout=10, data={
            "csrfmiddlewaretoken": csrf_token(alerts), "threshold": "19.9999999", "webhook_url": receiver.url})
        secret = re.search(r'id="new-secret">([^<]+)<', saved.text).group(1)

        answer = echo(sdk)
        assert answer.model == "demo:echo" and answer.usage.total_tokens > 0
        assert Decimal(0) < balance(org) < Decimal(20)

        deliver_booked_alerts()
        (received,) = receiver.wait_for(1)
        alert = verify(secret, received.body, received.headers["x-mixgateway-signature"])
        assert (alert["type"], alert["organization"], alert["threshold_usd"]) == ("balance.low", org.slug, "19.9999999")
        assert Decimal(alert["balance_usd"]) == balance(org)
        assert "balance.low" in browser.get(f"{live_server.url}/alerts/", timeout=10).text  # the delivery log


def deliver_booked_alerts() -> None:
    """Book the usage and send its alerts as the Celery worker would; the embedded default
    has booked it in-process and sends from a thread of its own."""
    from billing.models import AlertDelivery
    from billing.reconcile import reconcile
    from billing.tasks import deliver_alert
    from django.conf import settings

    if settings.REDIS_URL:
        reconcile()
        for delivery in AlertDelivery.objects.filter(channel="webhook", status="pending"):
            deliver_alert.apply(args=[str(delivery.uuid)])


def test_a_signup_credit_lets_a_new_user_call_demo_echo_at_once(live_server, mailoutbox, catalog, settings):
    settings.SIGNUP_CREDIT_USD = "1"  # what the embedded default grants
    sign_up(live_server, mailoutbox, "frank@new.example")
    org = Membership.objects.get(user__email="frank@new.example").organization
    assert balance_of(org.pk) == Decimal(1)
    assert echo(gateway(live_server, org)).choices[0].message.content


def test_a_dashboard_at_zero_says_how_to_add_money(live_server, mailoutbox, settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = ""
    browser = sign_up(live_server, mailoutbox, "gail@new.example")
    org = Membership.objects.get(user__email="gail@new.example").organization
    page = browser.get(f"{live_server.url}/dashboard/", timeout=10).text
    assert 'id="add-money"' in page and "Top up by card" not in page
    assert "redeem a prepaid code" in page and f"credit --tenant {org.slug} AMOUNT" in page


@pytest.mark.parametrize("database_url, expected", [(None, "1"), ("postgres://u@127.0.0.1:1/x", "0")])
def test_only_the_embedded_default_grants_a_signup_credit(database_url, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SIGNUP_CREDIT_USD")}
    if database_url:
        env["DATABASE_URL"] = database_url
    env["DJANGO_SETTINGS_MODULE"] = "console.settings"
    env.setdefault("SECRET_KEY", "insecure-test-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; print(settings.SIGNUP_CREDIT_USD)"],
                         env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == expected
