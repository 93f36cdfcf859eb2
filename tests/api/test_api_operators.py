"""The operator's provisioning with ADMIN_API_TOKEN: off (404) without it, 401 with a
wrong one; organizations made with their owner, credits booked exactly once."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.ledger import balance_of
from billing.models import LedgerEntry
from console.tenancy.models import AuditEvent, Membership, Organization
from tests.api.support import Api, assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)


def test_without_a_token_the_endpoints_do_not_exist(live_server, settings, org, management_key):
    settings.ADMIN_API_TOKEN = ""
    for credential in (None, "", "anything", management_key):
        api = Api(live_server.url, credential)
        assert_envelope(api.post("admin/organizations", json={"name": "X", "owner_email": "x@x.example"}), 404,
                        "unknown_url")
        assert_envelope(api.post(f"admin/organizations/{org.slug}/credits", json={"amount_usd": "1"}), 404,
                        "unknown_url")
    assert not Organization.objects.filter(name="X").exists() and balance_of(org.pk) == Decimal("100")


@pytest.mark.parametrize("credential", [None, "wrong-token-0123456789abcdef0123456789"])
def test_a_wrong_token_is_401(live_server, operator_token, credential):
    resp = Api(live_server.url, credential).post("admin/organizations",
                                                 json={"name": "X", "owner_email": "x@x.example"})
    assert_envelope(resp, 401, "invalid_api_key")


def test_a_management_key_is_not_the_operator(live_server, operator_token, org, management_key):
    resp = Api(live_server.url, management_key).post(f"admin/organizations/{org.slug}/credits",
                                                     json={"amount_usd": "1"})
    assert_envelope(resp, 401, "invalid_api_key")
    assert balance_of(org.pk) == Decimal("100")


def test_it_creates_an_organization_with_its_owner(operator):
    resp = operator.post("admin/organizations", json={"name": "Gamma Robotics", "owner_email": "Ops@Gamma.example"})
    assert resp.status_code == 201, resp.text
    assert resp.json() == {"slug": "gamma-robotics"}
    org = Organization.objects.get(slug="gamma-robotics")
    owner = get_user_model().objects.get(email__iexact="ops@gamma.example")
    assert Membership.objects.get(organization=org).user == owner and balance_of(org.pk) == Decimal("0")


@pytest.mark.parametrize("body, param, code", [
    ({"name": " ", "owner_email": "a@b.example"}, "name", "invalid_value"),
    ({"name": "x" * 201, "owner_email": "a@b.example"}, "name", "invalid_value"),
    ({"name": "Fine"}, "owner_email", "missing_required_parameter"),
    ({"name": "Fine", "owner_email": "not-an-email"}, "owner_email", "invalid_value"),
    ({"name": "Fine", "owner_email": "a" * 141 + "@b.example"}, "owner_email", "invalid_value"),
])
def test_it_refuses_a_bad_organization(operator, body, param, code):
    assert_envelope(operator.post("admin/organizations", json=body), 400, code, param)
    assert not Organization.objects.filter(name="Fine").exists()


def test_it_credits_an_organization_and_returns_the_ledger_entry(operator, org):
    resp = operator.post(f"admin/organizations/{org.slug}/credits",
                         json={"amount_usd": "25.000000000001", "note": "invoice 7"})
    assert resp.status_code == 201, resp.text
    entry = LedgerEntry.objects.get(pk=resp.json()["id"])
    assert resp.json() == {"id": entry.pk, "created_at": entry.created_at.isoformat().replace("+00:00", "Z"),
                           "kind": "credit", "amount_usd": "25.000000000001", "balance_after_usd": "125.000000000001",
                           "reference": entry.reference, "note": "invoice 7"}
    assert balance_of(org.pk) == Decimal("125.000000000001")
    event = AuditEvent.objects.get(action="balance.credited", target=entry.reference)
    assert event.actor is None and event.details["via"] == "operator"


@pytest.mark.parametrize("body, param", [
    ({"amount_usd": 25}, "amount_usd"), ({"amount_usd": "-5"}, "amount_usd"), ({"amount_usd": "0"}, "amount_usd"),
    ({"amount_usd": "9000000"}, "amount_usd"), ({"amount_usd": "1", "note": "n" * 501}, "note"),
])
def test_it_refuses_a_bad_credit(operator, org, body, param):
    assert_envelope(operator.post(f"admin/organizations/{org.slug}/credits", json=body), 400, "invalid_value", param)
    assert balance_of(org.pk) == Decimal("100")


def test_an_unknown_organization_is_404(operator):
    assert_envelope(operator.post("admin/organizations/nope/credits", json={"amount_usd": "1"}), 404, "not_found",
                    "slug")
