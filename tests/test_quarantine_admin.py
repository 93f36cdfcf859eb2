"""Quarantined usage events in the Django admin: visible read-only, and replayed through the
booking code once an operator fixed their cause: booked once, a second replay a no-op."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from billing import live
from billing.ledger import credit
from billing.models import Account, LedgerEntry, QuarantinedUsageEvent, UsageRecord
from billing.money import to_units
from billing.quarantine import event_of
from billing.reconcile import ledger_is_consistent
from tests.test_booking_poison import HELLO, quarantined, whale

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "admin:billing_quarantinedusageevent_changelist"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff(*permissions: str) -> Client:
    user = get_user_model().objects.create_user("operator", password="pw-operator-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def operator():
    return staff("view_quarantinedusageevent", "change_quarantinedusageevent")


@pytest.fixture
def refused(client, org) -> QuarantinedUsageEvent:
    """A real request whose cost would take the balance past what the ledger can hold."""
    whale(org)
    answered = client.chat.completions.with_raw_response.create(model="mock:huge-usage", messages=HELLO)
    return quarantined(answered.headers["x-request-id"])


def replay(browser: Client, row: QuarantinedUsageEvent):
    return browser.post(reverse(CHANGELIST), {"action": "replay_events", "_selected_action": [row.pk]}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_operator_sees_the_event_and_why(operator, refused):
    listing = operator.get(reverse(CHANGELIST)).content.decode()
    assert refused.request_id in listing and "Replay" in listing
    detail = operator.get(reverse("admin:billing_quarantinedusageevent_change", args=[refused.pk]))
    page = detail.content.decode()
    assert detail.status_code == 200 and "mock:huge-usage" in page and "1099511627776" in page
    assert "<textarea" not in page and 'name="error"' not in page  # read-only
    assert operator.post(reverse("admin:billing_quarantinedusageevent_delete", args=[refused.pk])).status_code == 403


def test_a_replay_books_the_event_once(operator, refused, org):
    cost = Decimal(event_of(refused)["cost"])
    credit(org.pk, Decimal("5000000"), note="the operator's fix: the balance can take the charge now")
    before = Account.objects.get(organization=org).balance

    booked = replay(operator, refused)

    assert "Booked 1 quarantined event(s)." in messages_of(booked)
    record = UsageRecord.objects.get(request_id=refused.request_id)
    assert record.cost == cost and record.prompt_tokens == 2**40
    account = Account.objects.get(organization=org)
    assert account.balance == before - cost and ledger_is_consistent(org.pk)
    assert live.snapshot(org.pk).balance == to_units(account.balance)  # the live store was told
    refused.refresh_from_db()
    assert refused.replayed_at is not None

    again = replay(operator, refused)

    assert "Nothing to replay" in " ".join(messages_of(again))
    assert UsageRecord.objects.filter(request_id=refused.request_id).count() == 1
    assert LedgerEntry.objects.filter(reference=f"usage:{refused.request_id}").count() == 1
    assert Account.objects.get(organization=org).balance == account.balance


def test_a_replay_before_the_fix_keeps_it_quarantined(operator, refused, org):
    response = replay(operator, refused)
    assert "The ledger still refused 1 event(s); see their error." in messages_of(response)
    refused.refresh_from_db()
    assert refused.attempts == 2 and refused.replayed_at is None
    assert not UsageRecord.objects.filter(request_id=refused.request_id).exists()
    assert ledger_is_consistent(org.pk)


def test_replaying_needs_the_change_permission(refused):
    viewer = staff("view_quarantinedusageevent")
    assert "replay_events" not in viewer.get(reverse(CHANGELIST)).content.decode()
    replay(viewer, refused)
    assert not UsageRecord.objects.filter(request_id=refused.request_id).exists()
