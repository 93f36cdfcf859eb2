"""The Alerts page: threshold and webhook settings (audited, the secret shown once), the
delivery log, and a signed test event. Owners and admins; other tenants get 404."""

import re
from decimal import Decimal

import pytest
from django.test import Client

from billing.alert_delivery import attempt
from billing.alerts import raise_event
from billing.models import Account, AlertDelivery
from console.tenancy.models import AuditEvent
from tests.webhook_receiver import WebhookReceiver, verify

pytestmark = pytest.mark.django_db


def test_an_admin_sets_the_threshold_and_url_and_sees_the_secret_once(as_dave, as_alice, org, dave):
    page = as_dave.post("/alerts/settings/", {"threshold": "5.50", "webhook_url": "https://hooks.example/mg"})
    assert page.status_code == 200 and "no-cache" in page["Cache-Control"]
    secret = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', page.content.decode()).group(1)
    org.refresh_from_db()
    assert org.webhook_url == "https://hooks.example/mg" and org.webhook_secret == secret
    assert Account.objects.get(organization=org).low_balance_threshold == Decimal("5.5")

    again = as_dave.get("/alerts/").content.decode()
    assert secret not in again and 'value="5.5"' in again and 'value="https://hooks.example/mg"' in again
    same = as_dave.post("/alerts/settings/", {"threshold": "5.5", "webhook_url": "https://hooks.example/mg"},
                        follow=True).content.decode()
    assert "Alert settings saved" in same and "new-secret" not in same
    org.refresh_from_db()
    assert org.webhook_secret == secret  # the same URL keeps its secret

    changes = AuditEvent.objects.filter(organization=org, actor=dave).order_by("id")
    assert [e.action for e in changes] == ["low_balance_threshold.changed", "webhook.changed"]
    assert secret not in str([e.details for e in changes])
    log = as_alice.get("/audit/").content.decode()  # the audit log is the owners'
    assert "Changed the low-balance alert threshold from off to 5.5 USD" in log
    assert "Set the webhook URL to https://hooks.example/mg and made a new signing secret" in log


def test_clearing_both_turns_alerts_off(as_alice, org):
    as_alice.post("/alerts/settings/", {"threshold": "3", "webhook_url": "https://hooks.example/mg"})
    as_alice.post("/alerts/settings/", {"threshold": "", "webhook_url": ""})
    org.refresh_from_db()
    assert org.webhook_url == "" and org.webhook_secret == ""
    assert Account.objects.get(organization=org).low_balance_threshold is None


@pytest.mark.parametrize("bad", [{"threshold": "-1"}, {"threshold": "lots"}, {"threshold": "1e-13"},
                                 {"webhook_url": "ftp://hooks.example/"}, {"webhook_url": "not a url"}])
def test_bad_settings_change_nothing(as_alice, org, bad):
    page = as_alice.post("/alerts/settings/", {"threshold": "", "webhook_url": "", **bad})
    assert page.status_code == 200 and 'class="errorlist' in page.content.decode()
    org.refresh_from_db()
    assert org.webhook_url == "" and Account.objects.get(organization=org).low_balance_threshold is None
    assert not AuditEvent.objects.filter(organization=org, action__in=["webhook.changed",
                                                                      "low_balance_threshold.changed"]).exists()


def test_it_requires_an_admin(as_bob, org):
    assert as_bob.get("/alerts/").status_code == 403
    assert as_bob.post("/alerts/settings/", {"threshold": "1", "webhook_url": ""}).status_code == 403
    assert as_bob.post("/alerts/test/").status_code == 403
    assert Account.objects.get(organization=org).low_balance_threshold is None
    assert Client().get("/alerts/").status_code == 302


def test_the_log_and_a_delivery_are_the_organizations_own(as_alice, as_charlie, org, other_org):
    raise_event(org.pk, {"type": "balance.low", "balance_usd": "0.5", "threshold_usd": "1"})
    raise_event(other_org.pk, {"type": "balance.low", "balance_usd": "0.1", "threshold_usd": "7"})
    mine = AlertDelivery.objects.get(organization=org)
    theirs = AlertDelivery.objects.get(organization=other_org)
    page = as_alice.get("/alerts/").content.decode()
    assert f'data-delivery-id="{mine.pk}"' in page and f'data-delivery-id="{theirs.pk}"' not in page
    detail = as_alice.get(f"/alerts/deliveries/{mine.pk}/").content.decode()
    assert "&quot;threshold_usd&quot;: &quot;1&quot;" in detail and str(mine.uuid) in detail
    assert as_alice.get(f"/alerts/deliveries/{theirs.pk}/").status_code == 404
    assert as_charlie.get(f"/alerts/deliveries/{mine.pk}/").status_code == 404


def test_the_test_button_sends_a_signed_test_event_and_logs_it(as_alice, org, django_capture_on_commit_callbacks,
                                                               settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    assert 'disabled>Send test event' in as_alice.get("/alerts/").content.decode()
    refused = as_alice.post("/alerts/test/", follow=True).content.decode()
    assert "set a webhook URL first" in refused and not AlertDelivery.objects.exists()
    with WebhookReceiver() as receiver:
        page = as_alice.post("/alerts/settings/", {"threshold": "", "webhook_url": receiver.url}).content.decode()
        secret = re.search(r'<code id="new-secret">([^<]+)</code>', page).group(1)
        with django_capture_on_commit_callbacks() as sent:  # handed to the worker once committed
            as_alice.post("/alerts/test/")
        assert len(sent) == 1
        delivery = AlertDelivery.objects.get(organization=org, event_type="test")
        assert attempt(delivery.uuid) is None  # what the worker does with it
        (post,) = receiver.received
    event = verify(secret, post.body, post.headers["x-mixgateway-signature"])
    assert event["type"] == "test" and event["organization"] == org.slug
    row = re.search(rf'<tr data-delivery-id="{delivery.pk}">.*?</tr>', as_alice.get("/alerts/").content.decode(),
                    re.S).group(0)
    assert "Delivered" in row and "<code>test</code>" in row
