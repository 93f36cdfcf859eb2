"""Idempotency-Key on every POST: a retry gets the first answer and changes nothing, per
organization (and for the operator), for IDEMPOTENCY_KEY_HOURS; simultaneous POSTs with
one key make one object (the live server's threads, PostgreSQL in CI)."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from billing.ledger import balance_of
from billing.models import LedgerEntry
from console.api.idempotency import prune
from console.api.models import IdempotentRequest
from console.tenancy.models import AuditEvent
from gateway.models import ApiKey
from tests.api.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

KEY = {"Idempotency-Key": "deploy-42"}


def standard_keys(org):
    return ApiKey.objects.filter(organization=org, kind=ApiKey.Kind.STANDARD)


def test_a_replay_returns_the_first_answer_and_changes_nothing(api, org):
    first = api.post("keys", json={"name": "ci"}, headers=KEY)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = api.post("keys", json={"name": "ci"}, headers=KEY)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the secret too: the retry's caller may never have seen the first
    assert standard_keys(org).count() == 1 and AuditEvent.objects.filter(action="key.created", target__startswith="sk-").count() == 1
    # Stored encrypted: the secret is not in the database in the clear.
    assert first.json()["secret"] not in IdempotentRequest.objects.get().answer


def test_the_same_key_for_a_different_request_is_422(api, org):
    api.post("keys", json={"name": "ci"}, headers=KEY)
    assert_envelope(api.post("keys", json={"name": "other"}, headers=KEY), 422, "idempotency_key_reused",
                    "Idempotency-Key")
    assert standard_keys(org).count() == 1


def test_keys_belong_to_one_organization(api, other_api, org, other_org):
    mine = api.post("keys", json={"name": "ci"}, headers=KEY).json()
    theirs = other_api.post("keys", json={"name": "ci"}, headers=KEY).json()
    assert mine["id"] != theirs["id"] and standard_keys(org).count() == standard_keys(other_org).count() == 1


def test_a_refused_request_is_not_remembered(api, org):
    assert_envelope(api.post("keys", json={"rpm_limit": 0}, headers=KEY), 400, "invalid_value")
    assert not IdempotentRequest.objects.exists()
    assert api.post("keys", json={"rpm_limit": 5}, headers=KEY).status_code == 201


def test_after_the_window_the_key_is_forgotten(api, org, settings):
    api.post("keys", json={"name": "ci"}, headers=KEY)
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS,
                                                                            seconds=1))
    again = api.post("keys", json={"name": "ci"}, headers=KEY)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert standard_keys(org).count() == 2
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert prune() == 1 and not IdempotentRequest.objects.exists()


@pytest.mark.parametrize("value", ["", "x" * 256, "spaces are not allowed", "ключ"])
def test_a_malformed_key_is_400(api, org, value):
    resp = api.post("keys", json={}, headers={"Idempotency-Key": value.encode().decode("latin-1")})
    assert_envelope(resp, 400, "invalid_value", "Idempotency-Key")
    assert not standard_keys(org).exists()


def _at_once(count, send):
    """`count` requests released together by a barrier; their responses."""
    barrier, answers = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        answers[i] = send()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


@pytest.mark.slow
def test_simultaneous_posts_with_one_key_make_one_key(api, org, management_key):
    url, headers = f"{api.base}keys", {"Authorization": f"Bearer {management_key}", **KEY}
    answers = _at_once(8, lambda: requests.post(url, json={"name": "race"}, headers=headers, timeout=30))
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.json()["secret"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    assert standard_keys(org).count() == 1 and AuditEvent.objects.filter(action="key.created", target__startswith="sk-").count() == 1


@pytest.mark.slow
def test_an_operator_credit_retried_at_once_is_booked_once(operator, operator_token, org):
    url = f"{operator.base}admin/organizations/{org.slug}/credits"
    headers = {"Authorization": f"Bearer {operator_token}", "Idempotency-Key": "invoice-7"}
    answers = _at_once(8, lambda: requests.post(url, json={"amount_usd": "10", "note": "invoice 7"},
                                                headers=headers, timeout=30))
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert LedgerEntry.objects.filter(note="invoice 7").count() == 1 and balance_of(org.pk) == Decimal("110")
