"""/api/v1/keys: inference keys with all their limits, made, changed and revoked through
the console's own actions; other organizations' keys and non-inference keys are 404."""

from datetime import UTC, timedelta
from decimal import Decimal

import openai
import pytest
from django.utils import timezone

from billing.models import UsageDailyRollup
from console.tenancy.models import AuditEvent
from gateway.keys.api_keys import create_management_key, find_key, hash_secret, mint_api_key, playground_key
from gateway.models import ApiKey
from tests.api.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = {"id", "name", "prefix", "status", "created_at", "last_used_at", "expires_at", "revoked_at",
          "allowed_models", "spend_limit_usd", "budget_period", "spent_this_period_usd", "period_resets_at",
          "rpm_limit", "tpm_limit"}


def chat(live_server, secret):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, max_retries=0, timeout=20)
    return client.chat.completions.create(model="demo:echo", messages=[{"role": "user", "content": "hi"}])


def test_it_creates_a_key_with_every_limit_and_shows_the_secret_once(live_server, api, org, alice, management_key, catalog):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    resp = api.post("keys", json={
        "name": "ci-deploy-42", "allowed_models": ["demo:echo"], "expires_at": expires.isoformat(),
        "spend_limit_usd": "5.25", "budget_period": "monthly", "rpm_limit": 60, "tpm_limit": 100000,
    })
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == FIELDS | {"secret"}
    secret = body.pop("secret")
    assert secret.startswith("sk-") and body["prefix"] == secret[:10]
    assert body["allowed_models"] == ["demo:echo"] and body["spend_limit_usd"] == "5.25"
    assert (body["budget_period"], body["rpm_limit"], body["tpm_limit"], body["status"]) == (
        "monthly", 60, 100000, "active")

    key = ApiKey.objects.get(pk=body["id"])
    assert key.secret_hash == hash_secret(secret) and key.created_by == alice and key.kind == ApiKey.Kind.STANDARD
    assert key.expires_at == expires and key.spend_limit == Decimal("5.25")
    identity = find_key(secret)
    assert (identity.rpm_limit, identity.tpm_limit, identity.allowed_models) == (60, 100000, ("demo:echo",))
    event = AuditEvent.objects.get(action="key.created", target=key.prefix)
    assert event.actor == alice and event.details["via"] == management_key[:10] and secret not in repr(event.details)

    # Never again in full; the key itself works on /v1.
    shown = api.get(f"keys/{key.pk}").json()
    assert shown == body and secret not in api.get("keys").text
    assert chat(live_server, secret).model == "demo:echo"


def test_a_key_with_no_fields_gets_the_defaults(api):
    body = api.post("keys", json={}).json()
    assert (body["name"], body["allowed_models"], body["expires_at"], body["spend_limit_usd"],
            body["budget_period"], body["rpm_limit"], body["tpm_limit"]) == ("", [], None, None, "none", None, None)


@pytest.mark.parametrize("body, param, code", [
    ({"allowed_models": ["demo:nope"]}, "allowed_models", "invalid_value"),
    ({"allowed_models": "demo:echo"}, "allowed_models", "invalid_value"),
    ({"spend_limit_usd": 5}, "spend_limit_usd", "invalid_value"),
    ({"spend_limit_usd": "0"}, "spend_limit_usd", "invalid_value"),
    ({"spend_limit_usd": "1e3"}, "spend_limit_usd", "invalid_value"),
    ({"budget_period": "yearly"}, "budget_period", "invalid_value"),
    ({"rpm_limit": 0}, "rpm_limit", "invalid_value"),
    ({"tpm_limit": 2**31}, "tpm_limit", "invalid_value"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "invalid_value"),
    ({"expires_at": "soon"}, "expires_at", "invalid_value"),
    ({"name": "x" * 101}, "name", "invalid_value"),
    ({"name": "nul\u0000"}, "name", "invalid_value"),
    ({"spend_limit": "5"}, "spend_limit", "unknown_parameter"),
])
def test_it_refuses_bad_limits_and_makes_nothing(api, catalog, body, param, code):
    assert_envelope(api.post("keys", json=body), 400, code, param)
    assert not ApiKey.objects.filter(kind=ApiKey.Kind.STANDARD).exists()


def test_it_changes_limits_and_the_gateway_sees_them(api, org, alice, management_key, catalog, settings):
    created = api.post("keys", json={"name": "before", "rpm_limit": 10}).json()
    resp = api.patch(f"keys/{created['id']}", json={"name": "after", "spend_limit_usd": "1.5",
                                                     "budget_period": "daily", "rpm_limit": None,
                                                     "allowed_models": ["demo:echo"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["name"], body["spend_limit_usd"], body["budget_period"], body["rpm_limit"], body["tpm_limit"]) == (
        "after", "1.5", "daily", None, None)
    identity = find_key(created["secret"])
    assert identity.spend_limit == Decimal("1.5") and identity.rpm_limit is None
    assert identity.allowed_models == ("demo:echo",)
    renamed = AuditEvent.objects.get(action="key.renamed")
    assert (renamed.details["old_name"], renamed.details["new_name"]) == ("before", "after")
    updated = AuditEvent.objects.get(action="key.updated")
    assert updated.actor == alice and updated.details["via"] == management_key[:10]
    assert (updated.details["old_rpm_limit"], updated.details["rpm_limit"]) == (10, None)
    assert (updated.details["old_spend_limit"], updated.details["spend_limit"]) == (None, "1.5")
    assert (updated.details["old_budget_period"], updated.details["budget_period"]) == ("none", "daily")
    # Sending what is already there changes nothing and writes no row.
    assert api.patch(f"keys/{created['id']}", json={"tpm_limit": None}).status_code == 200
    assert AuditEvent.objects.filter(action="key.updated").count() == 1


def test_it_shows_the_spend_of_the_current_period_and_when_it_resets(api, org):
    created = api.post("keys", json={"spend_limit_usd": "3", "budget_period": "daily"}).json()
    assert (created["spent_this_period_usd"], created["budget_period"]) == ("0", "daily")
    today = timezone.now().astimezone(UTC).date()
    for day, cost in ((today - timedelta(days=1), "2"), (today, "0.25")):  # retention's rollups count too
        UsageDailyRollup.objects.create(organization=org, day=day, model="demo:echo", api_key_id=created["id"],
                                        requests=1, cost=Decimal(cost))
    shown = api.get(f"keys/{created['id']}").json()
    assert shown["spent_this_period_usd"] == "0.25"
    assert shown["period_resets_at"] == f"{today + timedelta(days=1)}T00:00:00Z"
    in_all = api.patch(f"keys/{created['id']}", json={"budget_period": "none"}).json()
    assert (in_all["spent_this_period_usd"], in_all["period_resets_at"]) == ("2.25", None)


def test_delete_revokes_and_the_gateway_refuses_the_key(live_server, api, org, catalog):
    created = api.post("keys", json={"name": "short-lived"}).json()
    assert chat(live_server, created["secret"]).model == "demo:echo"
    resp = api.delete(f"keys/{created['id']}")
    assert resp.status_code == 204 and resp.content == b""
    assert api.get(f"keys/{created['id']}").json()["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError):
        chat(live_server, created["secret"])
    assert api.delete(f"keys/{created['id']}").status_code == 204  # again: harmless, one audit row
    assert AuditEvent.objects.filter(action="key.revoked").count() == 1


def test_other_organizations_keys_are_404_and_untouched(api, other_org):
    theirs, secret = mint_api_key(other_org, name="theirs")
    for resp in (api.get(f"keys/{theirs.pk}"), api.patch(f"keys/{theirs.pk}", json={"name": "mine"}),
                 api.delete(f"keys/{theirs.pk}")):
        assert_envelope(resp, 404, "not_found", "id")
    theirs.refresh_from_db()
    assert theirs.name == "theirs" and theirs.revoked_at is None
    assert theirs.pk not in [k["id"] for k in api.get("keys").json()["results"]]


def test_management_and_playground_keys_are_not_inference_keys(api, org, alice):
    management, _ = create_management_key(org, name="another", created_by=alice)
    playground = playground_key(org, alice)
    for pk in (management.pk, playground.key_id, 999999):
        assert_envelope(api.get(f"keys/{pk}"), 404, "not_found")
        assert_envelope(api.delete(f"keys/{pk}"), 404, "not_found")
    assert api.get("keys").json() == {"results": [], "next": None}
    assert ApiKey.objects.get(pk=management.pk).revoked_at is None


def test_the_list_is_cursor_paginated_newest_first(api, org):
    made = [mint_api_key(org, name=f"k{i}")[0].pk for i in range(5)]
    seen, url, pages = [], "keys?limit=2", 0
    while url:
        page = api.get(url).json()
        assert set(page) == {"results", "next"} and len(page["results"]) <= 2
        seen += [k["id"] for k in page["results"]]
        url, pages = page["next"], pages + 1
    assert seen == sorted(made, reverse=True) and pages == 3
    assert_envelope(api.get("keys?cursor=garbage"), 400, "invalid_value", "cursor")
    assert_envelope(api.get("keys?colour=red"), 400, "unknown_parameter", "colour")
