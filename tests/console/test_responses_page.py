"""The stored responses pages: the organization's list, one response's items, delete."""

import pytest

from console.tenancy.models import AuditEvent
from gateway.keys.api_keys import mint_api_key
from gateway.models import StoredResponse

pytestmark = pytest.mark.django_db


def stored(org, response_id="resp_1", key=None, **fields):
    return StoredResponse.objects.create(
        response_id=response_id, organization=org, api_key=key, model="demo:echo", status="completed",
        input_items=[{"type": "message", "role": "user", "content": "What is the weather?"},
                     {"type": "function_call_output", "call_id": "call_9", "output": "18 C"}],
        output_items=[{"type": "message", "role": "assistant",
                       "content": [{"type": "output_text", "text": "Sunny <b>today</b>", "annotations": []}]},
                      {"type": "function_call", "call_id": "call_10", "name": "get_weather",
                       "arguments": '{"city": "Rome"}'}],
        usage={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15, "cost": "0.0000018"},
        response={"instructions": "Be brief."}, **fields)


def test_it_lists_the_organizations_responses_newest_first(as_bob, org, other_org):
    stored(org, "resp_older")
    stored(org, "resp_newer")
    stored(other_org, "resp_theirs")
    page = as_bob.get("/responses/").content.decode()
    assert page.index("resp_newer") < page.index("resp_older") and "resp_theirs" not in page
    assert 'href="/responses/"' in page  # in the navigation


def test_it_shows_the_input_and_output_items_escaped(as_bob, org):
    stored(org)
    page = as_bob.get("/responses/resp_1/").content.decode()
    for text in ("What is the weather?", "call_9", "18 C", "Sunny &lt;b&gt;today&lt;/b&gt;", "call get_weather",
                 "{&quot;city&quot;: &quot;Rome&quot;}", "Be brief.", "0.0000018"):
        assert text in page
    assert "<b>today" not in page


def test_it_checks_ownership(as_charlie, org):
    stored(org)
    assert as_charlie.get("/responses/resp_1/").status_code == 404
    assert as_charlie.post("/responses/resp_1/delete").status_code == 404
    assert StoredResponse.objects.filter(response_id="resp_1").exists()


def test_an_admin_deletes_any_and_the_audit_log_says_who(as_dave, org, dave):
    stored(org)
    assert as_dave.get("/responses/resp_1/delete").status_code == 405  # POST only
    resp = as_dave.post("/responses/resp_1/delete")
    assert resp.status_code == 302 and not StoredResponse.objects.exists()
    event = AuditEvent.objects.get(action="response.deleted")
    assert (event.actor, event.target, event.organization_id) == (dave, "resp_1", org.pk)


def test_a_member_deletes_only_the_responses_of_their_own_keys(as_bob, org, bob, alice):
    own_key, _ = mint_api_key(org, name="bob's", created_by=bob)
    alices_key, _ = mint_api_key(org, name="alice's", created_by=alice)
    stored(org, "resp_bobs", key=own_key)
    stored(org, "resp_alices", key=alices_key)
    assert "Delete" not in as_bob.get("/responses/resp_alices/").content.decode()
    assert as_bob.post("/responses/resp_alices/delete").status_code == 403
    assert as_bob.post("/responses/resp_bobs/delete").status_code == 302
    assert list(StoredResponse.objects.values_list("response_id", flat=True)) == ["resp_alices"]


def test_the_delete_form_needs_its_csrf_token(bob, org):
    from django.test import Client

    from console.pages.common import SESSION_KEY

    stored(org)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    session = browser.session
    session[SESSION_KEY] = org.pk
    session.save()
    assert browser.post("/responses/resp_1/delete").status_code == 403
    assert StoredResponse.objects.exists()
