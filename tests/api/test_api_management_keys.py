"""Management keys ("mk-"): made by owners and admins (console, command), shown once,
audited; they call /api/v1 and never /v1, and inference keys never call /api/v1."""

import io
import re
from datetime import timedelta

import openai
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from console.pages.common import SESSION_KEY
from console.tenancy.models import AuditEvent
from gateway.keys.api_keys import (
    create_management_key,
    find_key,
    find_management_key,
    hash_secret,
    revoke_api_key,
)
from gateway.models import ApiKey

from tests.api.support import Api, assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

MK_SECRET = re.compile(r'<code id="new-secret">(mk-[A-Za-z0-9_-]{43})</code>')


def browser_of(user, org) -> Client:
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session[SESSION_KEY] = org.pk
    session.save()
    return browser


# -- made by owners and admins, shown once, audited ---------------------------------------


@pytest.mark.parametrize("who", ["alice", "dave"])
def test_owners_and_admins_create_one_in_the_console(request, org, who):
    user = request.getfixturevalue(who)
    browser = browser_of(user, org)
    page = browser.get("/keys/").content.decode()
    assert 'id="management-keys"' in page and "/keys/management/new/" in page
    assert page.count('id="id_name"') == 1 and 'name="management-name"' in page  # two forms, no clash

    resp = browser.post("/keys/management/new/", {"management-name": "ci"})
    assert resp.status_code == 200 and "no-store" in resp["Cache-Control"]
    secret = MK_SECRET.search(resp.content.decode()).group(1)
    key = ApiKey.objects.get(secret_hash=hash_secret(secret))
    assert (key.kind, key.name, key.created_by, key.prefix) == (ApiKey.Kind.MANAGEMENT, "ci", user, secret[:10])
    event = AuditEvent.objects.get(action="key.created", target=key.prefix)
    assert event.actor == user and event.details["kind"] == "management" and secret not in repr(event.details)
    # Listed by its prefix only, never again in full.
    listing = browser.get("/keys/").content.decode()
    assert key.prefix in listing and secret not in listing
    assert secret not in browser.get(f"/keys/{key.pk}/").content.decode()


def test_a_member_can_neither_create_nor_see_them(org, alice, bob, management_key):
    browser = browser_of(bob, org)
    assert 'id="management-keys"' not in browser.get("/keys/").content.decode()
    assert browser.post("/keys/management/new/", {"management-name": "mine"}).status_code == 403
    assert not ApiKey.objects.filter(kind=ApiKey.Kind.MANAGEMENT, name="mine").exists()
    key = find_management_key(management_key)
    assert browser.get(f"/keys/{key.pk}/").status_code == 403
    assert browser.post(f"/keys/{key.pk}/revoke/").status_code == 403
    # The action itself refuses too, whoever calls it.
    with pytest.raises(Exception, match="owners and admins"):
        create_management_key(org, name="sneaky", created_by=bob)


def test_an_outsider_cannot_reach_them(org, other_org, charlie, management_key):
    key = find_management_key(management_key)
    browser = browser_of(charlie, other_org)
    assert browser.get(f"/keys/{key.pk}/").status_code == 404
    assert browser.post(f"/keys/{key.pk}/revoke/").status_code == 404
    assert find_management_key(management_key).revoked_at is None


def test_an_admin_revokes_one_and_the_api_refuses_it_at_once(live_server, org, dave, management_key):
    api = Api(live_server.url, management_key)
    assert api.get("organization").status_code == 200
    key = find_management_key(management_key)
    resp = browser_of(dave, org).post(f"/keys/{key.pk}/revoke/")
    assert resp.status_code == 302
    assert AuditEvent.objects.filter(action="key.revoked", target=key.prefix, actor=dave).count() == 1
    error = assert_envelope(api.get("organization"), 401, "invalid_api_key")
    assert "revoked" in error["message"]


def test_the_command_prints_only_a_management_key(org):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "--tenant", org.slug, "--name", "ci", "--kind", "management", stdout=out,
                 stderr=err)
    secret = out.getvalue().strip()
    assert re.fullmatch(r"mk-[A-Za-z0-9_-]{43}", secret) and out.getvalue() == secret + "\n" and not err.getvalue()
    key = find_management_key(secret)
    assert key.organization == org and key.kind == ApiKey.Kind.MANAGEMENT and key.created_by is None


# -- each kind of key on its own side --------------------------------------------------------


def test_a_management_key_cannot_call_the_gateway(live_server, catalog, management_key):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=management_key, max_retries=0, timeout=20)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="demo:echo", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    # Not by its shape alone: the inference lookup does not know management keys at all.
    assert find_key(management_key) is None


def test_an_inference_key_cannot_call_the_management_api(live_server, api_key):
    error = assert_envelope(Api(live_server.url, api_key).get("organization"), 401, "invalid_api_key")
    assert "mk-" in error["message"]


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer mk-short", "Bearer " + "mk-" + "x" * 43,
                                    "Bearer " + "x" * 2000])
def test_missing_malformed_and_unknown_credentials_are_401(live_server, header):
    headers = {} if header is None else {"Authorization": header}
    resp = Api(live_server.url, None).get("organization", headers=headers)
    assert_envelope(resp, 401, "invalid_api_key")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="mixgateway"'


def test_revoked_and_expired_management_keys_are_401(live_server, org, alice):
    revoked, revoked_secret = create_management_key(org, name="old", created_by=alice)
    revoke_api_key(revoked, actor=alice)
    expired, expired_secret = create_management_key(org, name="short", created_by=alice,
                                                    expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "revoked" in assert_envelope(Api(live_server.url, revoked_secret).get("keys"), 401,
                                        "invalid_api_key")["message"]
    assert "expired" in assert_envelope(Api(live_server.url, expired_secret).get("keys"), 401,
                                        "invalid_api_key")["message"]
