"""GET and PATCH /api/v1/organization: decimal strings, the webhook secret once, audited."""

from decimal import Decimal

import pytest

from billing.ledger import set_credit_limit
from billing.queries import account_of
from console.tenancy.models import AuditEvent, Organization
from tests.api.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_shows_the_organization_with_money_as_decimal_strings(api, org):
    set_credit_limit(org.pk, Decimal("2.5"))
    resp = api.get("organization")
    assert resp.status_code == 200 and len(resp.headers["x-request-id"]) == 36
    assert resp.json() == {"slug": "alpha-labs", "name": "Alpha Labs", "balance_usd": "100",
                           "credit_limit_usd": "2.5", "low_balance_threshold_usd": None, "webhook_url": ""}


def test_it_sets_the_threshold_and_the_webhook_secret_is_shown_once(api, org, alice, management_key):
    resp = api.patch("organization", json={"low_balance_threshold_usd": "12.000000000001",
                                           "webhook_url": "https://hooks.example/mixgateway"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["low_balance_threshold_usd"] == "12.000000000001"
    assert body["webhook_url"] == "https://hooks.example/mixgateway"
    secret = body["webhook_secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    org.refresh_from_db()
    assert account_of(org).low_balance_threshold == Decimal("12.000000000001") and org.webhook_secret == secret

    # Never again: not on GET, not when something else changes, not for the same URL.
    assert "webhook_secret" not in api.get("organization").json()
    again = api.patch("organization", json={"webhook_url": "https://hooks.example/mixgateway"}).json()
    assert again["webhook_secret"] is None
    assert api.patch("organization", json={"low_balance_threshold_usd": None}).json()["webhook_secret"] is None

    # A new URL gets a new secret; an empty one removes URL and secret.
    rotated = api.patch("organization", json={"webhook_url": "https://hooks.example/v2"}).json()["webhook_secret"]
    assert rotated.startswith("whsec_") and rotated != secret
    assert api.patch("organization", json={"webhook_url": ""}).json()["webhook_url"] == ""
    org.refresh_from_db()
    assert (org.webhook_url, org.webhook_secret, account_of(org).low_balance_threshold) == ("", "", None)

    thresholds = list(AuditEvent.objects.filter(action="low_balance_threshold.changed").order_by("pk"))
    webhooks = list(AuditEvent.objects.filter(action="webhook.changed").order_by("pk"))
    assert len(thresholds) == 2 and len(webhooks) == 3  # the unchanged PATCH wrote nothing
    assert all(e.actor == alice and e.details["via"] == management_key[:10] for e in thresholds + webhooks)
    assert thresholds[0].details["new_threshold"] == "12.000000000001"
    assert not any(secret in repr(e.details) or rotated in repr(e.details) for e in webhooks)


@pytest.mark.parametrize("body, param, code", [
    ({"low_balance_threshold_usd": 5.5}, "low_balance_threshold_usd", "invalid_value"),  # a float: never
    ({"low_balance_threshold_usd": "-1"}, "low_balance_threshold_usd", "invalid_value"),
    ({"low_balance_threshold_usd": "0.0000000000001"}, "low_balance_threshold_usd", "invalid_value"),
    ({"webhook_url": "ftp://files.example/x"}, "webhook_url", "invalid_value"),
    ({"webhook_url": "not a url"}, "webhook_url", "invalid_value"),
    ({"name": "Renamed"}, "name", "unknown_parameter"),
    ({"low_balance_threshold": "5"}, "low_balance_threshold", "unknown_parameter"),
])
def test_it_refuses_bad_values_and_changes_nothing(api, org, body, param, code):
    assert_envelope(api.patch("organization", json=body), 400, code, param)
    assert account_of(org).low_balance_threshold is None and Organization.objects.get(pk=org.pk).webhook_url == ""
    assert not AuditEvent.objects.filter(action__in=["low_balance_threshold.changed", "webhook.changed"]).exists()


def test_a_body_that_is_not_json_is_the_envelope(api):
    resp = api.patch("organization", data=b"{not json", headers={"Content-Type": "application/json"})
    assert_envelope(resp, 400, "invalid_json")
    assert_envelope(api.patch("organization", data=b'{"webhook_url": "\\ud800"}'), 400, "invalid_json")


def test_each_key_sees_its_own_organization(api, other_api):
    assert api.get("organization").json()["slug"] == "alpha-labs"
    assert other_api.get("organization").json()["slug"] == "beta-corp"


def test_unknown_urls_and_methods_are_the_envelope(api):
    assert_envelope(api.get("nope"), 404, "unknown_url")
    assert_envelope(api.get("organization/"), 404, "unknown_url")
    assert_envelope(api.delete("organization"), 405, "method_not_allowed")


def test_unknown_urls_answer_the_envelope_for_every_method(api):
    # Found by fuzzing: Django's CSRF check used to answer a bad URL's PATCH with an HTML 403.
    for method in ("PATCH", "DELETE", "POST", "PUT"):
        assert_envelope(api.request(method, "keys/null", json={}), 404, "unknown_url")
