"""The playground streams answers through the real request path, billed to the current
organization's playground key, with the session and a CSRF token instead of a secret."""

import json
import re
from decimal import Decimal

import pytest
from django.test import Client

from billing.ledger import credit
from billing.models import UsageRecord
from billing.reconcile import reconcile
from gateway import pipeline
from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import playground_key
from gateway.models import ApiKey, Provider
from tests.billing_helpers import balance

pytestmark = pytest.mark.django_db

URL = "/playground/chat/"
HELLO = [{"role": "user", "content": "Hello there!"}]


def post(browser, body, **headers):
    return browser.post(URL, data=json.dumps(body), content_type="application/json", **headers)


def events(resp) -> list:
    assert resp["Content-Type"] == "text/event-stream"
    text = b"".join(resp.streaming_content).decode()
    assert text.endswith("\n\n")
    return [block.removeprefix("data: ") for block in text.strip().split("\n\n")]


def test_the_page_offers_the_enabled_models(as_bob, catalog):
    page = as_bob.get("/playground/").content.decode()
    assert 'id="prompt"' in page and 'id="answer"' in page and ">Send</button>" in page
    assert 'id="system"' in page and 'id="temperature"' in page and 'id="max_tokens"' in page
    assert '<option value="demo:echo" selected' in page
    assert "console/playground.js" in page and "sk-" not in page


UNCONFIGURED = """
providers:
  openai:
    protocol: openai
    base_url: https://api.openai.example/v1
    api_key_env: MIXGATEWAY_TEST_UNSET_KEY
    models:
      gpt-4o-mini: {input_per_mtok: "0.15", output_per_mtok: "0.60"}
      text-embedding-3-small: {input_per_mtok: "0.02", output_per_mtok: "0"}
  demo:
    protocol: mock
    models:
      echo: {input_per_mtok: "0.10", output_per_mtok: "0.20"}
"""


def test_it_offers_chat_models_only_and_unconfigured_ones_disabled(as_bob, catalog, monkeypatch):
    monkeypatch.delenv("MIXGATEWAY_TEST_UNSET_KEY", raising=False)
    load_catalog(UNCONFIGURED)
    resp = as_bob.get("/playground/")
    offered = {m["public_id"]: m["availability"] for m in resp.context["models"]}
    assert "openai:text-embedding-3-small" not in offered and "demo:echo" in offered
    assert offered["openai:gpt-4o-mini"].status == "not_configured"
    page = resp.content.decode()
    assert re.search(r'<option value="openai:gpt-4o-mini"\s+disabled', page)
    assert "openai:gpt-4o-mini — provider not configured" in page


def test_an_unconfigured_provider_is_refused_with_the_reason_before_any_retry(as_bob, catalog, monkeypatch):
    monkeypatch.delenv("MIXGATEWAY_TEST_UNSET_KEY", raising=False)
    load_catalog(UNCONFIGURED)
    resp = post(as_bob, {"model": "openai:gpt-4o-mini", "messages": HELLO})
    assert resp.status_code == 502 and resp["Content-Type"] == "application/json"
    error = resp.json()["error"]
    assert error["code"] == "upstream_error"
    assert error["message"].startswith("The provider 'openai' is not configured on this gateway")
    assert "MIXGATEWAY_TEST_UNSET_KEY" not in error["message"]


def test_without_any_usable_chat_model_it_says_why(as_bob, catalog, monkeypatch):
    monkeypatch.delenv("MIXGATEWAY_TEST_UNSET_KEY", raising=False)
    load_catalog(UNCONFIGURED)
    Provider.objects.exclude(slug="openai").update(enabled=False)
    page = as_bob.get("/playground/").content.decode()
    assert "their providers are not configured" in page and "console/playground.js" not in page


def test_it_streams_the_answer_and_bills_it(as_bob, bob, org, catalog):
    before = balance(org)
    resp = post(as_bob, {"model": "demo:echo", "messages": HELLO})
    assert resp.status_code == 200
    data = events(resp)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Hello there!" in text
    assert all(c["model"] == "demo:echo" for c in chunks)
    usage = chunks[-1]["usage"]
    cost = Decimal(str(usage["cost"]))
    assert cost > 0
    reconcile()
    record = UsageRecord.objects.get(request_id=resp["x-request-id"])
    key = ApiKey.objects.get(pk=record.api_key_id)
    assert key.kind == ApiKey.Kind.PLAYGROUND and key.organization == org and key.created_by == bob
    assert record.organization == org and record.stream and record.cost == cost
    assert balance(org) == before - cost


def test_it_keeps_one_playground_key_and_allows_follow_ups(as_alice, org, catalog):
    first = post(as_alice, {"model": "demo:echo", "messages": HELLO})
    events(first)
    conversation = HELLO + [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Again?"}]
    second = post(as_alice, {"model": "demo:echo", "messages": conversation})
    assert "Again?" in "".join(events(second))
    assert ApiKey.objects.filter(organization=org, kind=ApiKey.Kind.PLAYGROUND).count() == 1


def test_it_always_streams_and_passes_nothing_else_from_the_browser(as_alice, catalog):
    resp = post(as_alice, {"model": "mock:echo-request", "messages": HELLO, "stream": False,
                           "tools": [{"type": "function", "function": {"name": "f"}}], "user": "someone"})
    data = events(resp)
    assert resp.status_code == 200 and data[-1] == "[DONE]"
    sent = catalog.requests[-1]["body"]
    assert sent["stream"] is True and "tools" not in sent and "user" not in sent


def test_the_system_prompt_temperature_and_max_tokens_reach_the_model(as_alice, catalog):
    conversation = [{"role": "system", "content": "Answer in French."}, *HELLO]
    resp = post(as_alice, {"model": "mock:echo-request", "messages": conversation,
                           "temperature": 0.3, "max_tokens": 77})
    assert resp.status_code == 200 and events(resp)[-1] == "[DONE]"
    sent = catalog.requests[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 77


@pytest.mark.parametrize("setting", [{"temperature": 7}, {"max_tokens": "x"}, {"max_tokens": 0}])
def test_settings_out_of_range_are_refused_as_on_v1(as_alice, catalog, setting):
    resp = post(as_alice, {"model": "demo:echo", "messages": HELLO, **setting})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == next(iter(setting))


def test_an_empty_balance_is_an_insufficient_quota_error(as_charlie, other_org, catalog):
    resp = post(as_charlie, {"model": "demo:echo", "messages": HELLO})
    assert resp.status_code == 429 and resp["Content-Type"] == "application/json"
    error = resp.json()["error"]
    assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
    assert resp.json()["request_id"] == resp["x-request-id"]


@pytest.mark.parametrize("body, status, code", [
    ({"model": "demo:echo"}, 400, "missing_required_parameter"),
    ({"model": "demo:echo", "messages": "hi"}, 400, "invalid_type"),
    ({"model": "demo:nope", "messages": HELLO}, 404, "model_not_found"),
    ({"messages": HELLO}, 400, "missing_required_parameter"),
])
def test_bad_requests_get_the_gateways_error_envelope(as_alice, catalog, body, status, code):
    resp = post(as_alice, body)
    assert resp.status_code == status and resp.json()["error"]["code"] == code


def test_a_body_that_is_not_json_is_refused(as_alice, catalog):
    resp = as_alice.post(URL, data="model=demo:echo", content_type="text/plain")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_json"


def test_it_needs_a_csrf_token(alice, org, catalog):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert post(browser, {"model": "demo:echo", "messages": HELLO}).status_code == 403
    page = browser.get("/playground/")
    token = page.cookies["csrftoken"].value
    resp = post(browser, {"model": "demo:echo", "messages": HELLO}, HTTP_X_CSRFTOKEN=token)
    assert resp.status_code == 200 and events(resp)[-1] == "[DONE]"


def test_it_needs_a_login(org, catalog):
    resp = post(Client(), {"model": "demo:echo", "messages": HELLO})
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]
    assert not ApiKey.objects.filter(kind=ApiKey.Kind.PLAYGROUND).exists()


def test_it_only_takes_posts(as_alice):
    assert as_alice.get(URL).status_code == 405


def test_it_bills_the_callers_own_organization(as_charlie, charlie, org, other_org, catalog):
    credit(other_org.pk, Decimal("5"), note="test")
    alpha_before, beta_before = balance(org), balance(other_org)
    resp = post(as_charlie, {"model": "demo:echo", "messages": HELLO})
    events(resp)
    reconcile()
    record = UsageRecord.objects.get(request_id=resp["x-request-id"])
    assert record.organization == other_org
    assert ApiKey.objects.get(pk=record.api_key_id).organization == other_org
    assert balance(org) == alpha_before
    assert balance(other_org) == beta_before - record.cost
    assert not ApiKey.objects.filter(organization=org, kind=ApiKey.Kind.PLAYGROUND).exists()


def test_playground_key_mints_once_and_replaces_a_revoked_key(org, alice):
    first = playground_key(org, alice)
    assert playground_key(org, alice) == first
    ApiKey.objects.filter(pk=first.key_id).update(revoked_at="2020-01-01T00:00:00Z")
    second = playground_key(org, alice)
    assert second.key_id != first.key_id and not second.revoked
    assert second.organization_id == org.pk and not second.allowed_models


def test_it_is_served_by_the_same_pipeline_function_as_v1(as_bob, catalog, monkeypatch):
    served = []
    real_serve = pipeline.serve
    monkeypatch.setattr(pipeline, "serve", lambda surface, request, key, body=None: served.append(surface.name)
                        or real_serve(surface, request, key, body))
    assert post(as_bob, {"model": "demo:echo", "messages": HELLO}).status_code == 200
    assert served == ["chat"]
