"""Alerts without a worker: when they are raised (a crossing, a key's threshold), what is
sent (signed POSTs, the owners' email) and how failures are retried and recorded. The worker
sending them for real is tests/test_alerts_worker.py."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.db.models import F
from django.utils import timezone

from billing import alert_delivery
from billing.alert_delivery import attempt, resend_overdue, signature
from billing.alerts import raise_event, send_test_event
from billing.ledger import adjust, credit
from billing.low_balance import set_low_balance_threshold
from billing.models import Account, AlertDelivery
from billing.reconcile import book
from console.tenancy.webhooks import set_webhook_url
from gateway.keys import spend_alerts
from gateway.keys.api_keys import mint_api_key
from tests.console.test_usage import event
from tests.webhook_receiver import WebhookReceiver, verify

pytestmark = pytest.mark.django_db
WEBHOOK, EMAIL = AlertDelivery.Channel.WEBHOOK, AlertDelivery.Channel.EMAIL


@pytest.fixture
def receiver(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # it listens on loopback
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def secret(org, receiver):
    return set_webhook_url(org, receiver.url, actor=None)


def spend(org, usd: str, *, key=None, when=None) -> None:
    """Book one request of `org` costing `usd` (0.27 USD per million prompt tokens)."""
    tokens = int(Decimal(usd) / Decimal("0.27") * 1_000_000)
    assert Decimal(tokens) * Decimal("0.27") / 1_000_000 == Decimal(usd)
    book([event(org, key=key, prompt=tokens, completion=0, when=when or datetime.now(UTC))])


def deliveries(org, event_type="balance.low"):
    return list(AlertDelivery.objects.filter(organization=org, event_type=event_type).order_by("id"))


def test_a_crossing_alerts_once_by_webhook_and_email_and_a_credit_rearms_it(org, secret, receiver):
    set_low_balance_threshold(org.pk, Decimal("99.5"), actor=None)
    spend(org, "0.27")  # 99.73: above
    assert deliveries(org) == []
    spend(org, "0.27")  # 99.46: below, the crossing
    spend(org, "0.27")  # still below: the same crossing
    first = deliveries(org)
    assert sorted(d.channel for d in first) == [EMAIL, WEBHOOK]
    assert first[0].payload == {"type": "balance.low", "organization": org.slug, "balance_usd": "99.46",
                                "threshold_usd": "99.5"}
    credit(org.pk, Decimal("1"), note="top-up")  # 100.19: back above, re-armed
    adjust(org.pk, Decimal("-0.5"), note="correction")  # 99.69: above, nothing
    assert len(deliveries(org)) == 2
    spend(org, "0.27")  # 99.42: the second crossing
    second = deliveries(org)[2:]
    assert len(second) == 2 and second[0].payload["balance_usd"] == "99.42"

    webhook = next(d for d in first if d.channel == WEBHOOK)
    assert attempt(webhook.uuid) is None  # delivered: nothing more to do
    (post,) = receiver.received
    assert verify(secret, post.body, post.headers["x-mixgateway-signature"]) == webhook.payload
    assert post.headers["x-mixgateway-delivery"] == str(webhook.uuid)
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts, webhook.last_status_code, webhook.target) == (
        "delivered", 1, 200, receiver.url)
    assert attempt(webhook.uuid) is None and len(receiver.received) == 1  # a task run twice sends once


def test_the_owners_get_one_email(org, alice_and_a_second_owner):
    set_low_balance_threshold(org.pk, Decimal("100"), actor=None)
    spend(org, "0.27")
    (email,) = deliveries(org)  # no webhook URL: email only
    assert attempt(email.uuid) is None
    (sent,) = mail.outbox
    assert sorted(sent.to) == ["alice@alpha.example", "erin@alpha.example"]
    assert "99.73 USD" in sent.body and sent.subject == "[MixGateway] The balance of Alpha Labs is below 100 USD"
    email.refresh_from_db()
    assert email.status == "delivered" and email.attempts == 1


@pytest.fixture
def alice_and_a_second_owner(org):
    from console.tenancy.models import Membership
    from tests.console.conftest import person

    Membership.objects.create(user=person("erin@alpha.example"), organization=org, role=Membership.Role.OWNER)


def test_a_signature_with_another_secret_or_body_does_not_verify():
    header = signature("whsec_right", b'{"type":"test"}', 1_700_000_000)
    with pytest.raises(ValueError):
        verify("whsec_wrong", b'{"type":"test"}', header, tolerance=10**10)
    with pytest.raises(ValueError):
        verify("whsec_right", b'{"type":"tost"}', header, tolerance=10**10)
    assert verify("whsec_right", b'{"type":"test"}', header, tolerance=10**10) == {"type": "test"}


def later(delivery, **delta) -> None:
    """As if the wait before the delivery's next attempt has passed."""
    AlertDelivery.objects.filter(pk=delivery.pk).update(last_attempt_at=F("last_attempt_at") - timedelta(**delta))


def test_a_failed_attempt_is_recorded_and_retried_with_growing_waits_then_given_up(org, secret, receiver, settings):
    settings.ALERT_MAX_ATTEMPTS, settings.ALERT_RETRY_BASE_SECONDS = 3, 30
    receiver.answers = [500, 503, 502]
    delivery = send_test_event(org)
    assert attempt(delivery.uuid) == 30
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "answered 500: receiver says no"
    assert attempt(delivery.uuid) is None and len(receiver.received) == 1  # a copy of the task, early: nothing
    later(delivery, seconds=30)
    assert attempt(delivery.uuid) == 60
    later(delivery, seconds=60)
    assert attempt(delivery.uuid) is None  # the third and last
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 502)
    assert delivery.delivered_at is None and len(receiver.received) == 3
    assert len({r.headers["x-mixgateway-delivery"] for r in receiver.received}) == 1


def test_an_unreachable_receiver_is_an_error_and_a_removed_url_gives_up(org, secret, receiver, settings):
    delivery = send_test_event(org)
    org.webhook_url = "http://127.0.0.1:9/nothing-listens"
    org.save(update_fields=["webhook_url"])
    assert attempt(delivery.uuid) is not None
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and "refused" in delivery.last_error.lower()
    set_webhook_url(org, "", actor=None)
    later(delivery, hours=1)
    assert attempt(delivery.uuid) is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.last_error == "the webhook URL was removed"


def test_a_delivery_whose_task_was_lost_is_sent_again_by_the_sweep(org, secret, monkeypatch):
    handed = []
    monkeypatch.setattr(alert_delivery, "dispatch", handed.append)
    lost, retried, fresh = (send_test_event(org) for _ in range(3))
    AlertDelivery.objects.filter(pk=lost.pk).update(created_at=F("created_at") - timedelta(minutes=6))
    AlertDelivery.objects.filter(pk=retried.pk).update(  # its retry is due in 30 s: its task is waiting
        created_at=F("created_at") - timedelta(minutes=6), attempts=1, last_attempt_at=timezone.now())
    assert resend_overdue() == 1 and handed == [lost.uuid]
    assert fresh.uuid not in handed


def test_a_webhook_on_a_private_address_is_refused_unless_allowed(org, secret, receiver, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    for url in (receiver.url, "http://169.254.169.254/latest/meta-data", "http://[::1]:6379/", "http://10.1.2.3/"):
        set_webhook_url(org, url, actor=None)
        delivery = send_test_event(org)
        assert attempt(delivery.uuid) is None
        delivery.refresh_from_db()
        assert delivery.status == "failed" and "non-public address" in delivery.last_error, url
    assert receiver.received == []


def test_a_key_alerts_at_80_and_100_percent_once_each_per_period(org, secret, monkeypatch):
    key, _ = mint_api_key(org, name="batch jobs")
    key.spend_limit, key.budget_period = Decimal("1.35"), "daily"
    key.save(update_fields=["spend_limit", "budget_period"])
    day_one = datetime(2026, 3, 2, 10, tzinfo=UTC)
    monkeypatch.setattr(spend_alerts.timezone, "now", lambda: day_one)
    for _ in range(3):
        spend(org, "0.27", key=key, when=day_one)  # 0.81: 60%
    assert deliveries(org, "key.spend") == []
    spend(org, "0.27", key=key, when=day_one)  # 1.08: 80%
    spend(org, "0.27", key=key, when=day_one)  # 1.35: 100%
    spend(org, "0.27", key=key, when=day_one)  # past it (refused live; booked late): nothing new
    alerts = [d.payload for d in deliveries(org, "key.spend") if d.channel == WEBHOOK]
    assert alerts == [
        {"type": "key.spend", "organization": org.slug, "key_id": key.pk, "key_name": "batch jobs", "percent": 80,
         "spent_usd": "1.08", "limit_usd": "1.35", "budget_period": "daily"},
        {"type": "key.spend", "organization": org.slug, "key_id": key.pk, "key_name": "batch jobs", "percent": 100,
         "spent_usd": "1.35", "limit_usd": "1.35", "budget_period": "daily"},
    ]
    day_two = day_one + timedelta(days=1)
    monkeypatch.setattr(spend_alerts.timezone, "now", lambda: day_two)
    for _ in range(4):
        spend(org, "0.27", key=key, when=day_two)  # a new day starts from zero
    assert [d.payload["percent"] for d in deliveries(org, "key.spend") if d.channel == WEBHOOK] == [80, 100, 80]


def test_a_key_without_a_limit_never_alerts(org, secret):
    key, _ = mint_api_key(org, name="no limit")
    spend(org, "0.27", key=key)
    assert deliveries(org, "key.spend") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_bookings_alert_once_per_crossing(org, monkeypatch):
    monkeypatch.setattr(alert_delivery, "dispatch", lambda uuid: None)  # not sent here: counted
    set_low_balance_threshold(org.pk, Decimal("99"), actor=None)
    start = threading.Barrier(8)

    def debit():
        start.wait()
        try:
            spend(org, "0.27")  # the fourth booking crosses 99, whichever thread makes it
        finally:
            connection.close()

    threads = [threading.Thread(target=debit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Account.objects.get(organization=org).balance == Decimal("100") - 8 * Decimal("0.27")
    assert [d.channel for d in deliveries(org)] == [EMAIL]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(bool(django_settings.REDIS_URL), reason="the embedded default, which has no worker")
def test_the_embedded_default_sends_from_a_background_thread_and_retries(org, receiver, settings):
    settings.ALERT_RETRY_BASE_SECONDS = 0.05
    secret = set_webhook_url(org, receiver.url, actor=None)
    set_low_balance_threshold(org.pk, Decimal("99.9"), actor=None)
    receiver.answers = [500]
    adjust(org.pk, Decimal("-0.2"), note="a correction")  # returns at once: the thread sends
    posts = receiver.wait_for(2, timeout=10)
    assert len(posts) == 2
    assert verify(secret, posts[1].body, posts[1].headers["x-mixgateway-signature"])["type"] == "balance.low"
    delivered = AlertDelivery.objects.filter(organization=org, status="delivered")
    deadline = time.monotonic() + 10
    while delivered.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(delivered.values_list("channel", "attempts")) == [(EMAIL, 1), (WEBHOOK, 2)]
    assert len(mail.outbox) == 1


def test_staff_see_every_delivery_read_only_in_the_admin(admin_client, org):
    raise_event(org.pk, {"type": "balance.low", "balance_usd": "1", "threshold_usd": "2"})
    page = admin_client.get("/admin/billing/alertdelivery/")
    assert page.status_code == 200 and "balance.low" in page.content.decode()
    row = AlertDelivery.objects.get(organization=org)
    assert admin_client.get(f"/admin/billing/alertdelivery/{row.pk}/change/").status_code == 200
    assert admin_client.get("/admin/billing/alertdelivery/add/").status_code == 403
