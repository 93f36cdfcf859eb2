"""A Gemini upstream's errors in the gateway's envelope, and what each failure costs."""

from decimal import Decimal

import openai
import pytest
import requests

from gateway.routing.catalog_loader import load_catalog
from tests.billing_helpers import balance, booked
from tests.gemini_mock import API_KEY
from tests.test_gemini import HELLO, gemini, gemini_catalog  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
INPUT, CACHED, OUTPUT = Decimal("0.30"), Decimal("0.075"), Decimal("2.50")


def sse_post(gateway_url: str, api_key: str, model: str) -> requests.Response:
    return requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                         json={"model": model, "messages": HELLO, "stream": True}, timeout=10)


def test_a_rejected_request_keeps_googles_status_and_message(client, gemini):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="google:gemini-bad-request", messages=HELLO)
    assert err.value.code == "invalid_request" and "generation_config.temperature" in err.value.body["message"]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="google:gemini-unknown", messages=HELLO)
    assert err.value.code == "model_not_found" and "gemini-unknown" in err.value.body["message"]


def test_resource_exhausted_is_a_429_with_googles_retry_delay(client, gemini):
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="google:gemini-rate-limited", messages=HELLO)
    assert (err.value.type, err.value.code) == ("requests", "rate_limit_exceeded")
    assert err.value.response.headers["retry-after"] == "7"


def test_a_server_error_is_a_502_and_costs_nothing(client, gemini, org):
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="google:gemini-server-error", messages=HELLO, stream=stream)
        assert (err.value.status_code, err.value.code) == (502, "upstream_error")
        record = booked(err.value.response.headers["x-request-id"])
        assert (record.status, record.cost, record.ledger_entry) == ("upstream_error", 0, None)
    assert balance(org) == Decimal("100")


def test_a_bad_upstream_key_is_the_gateways_problem_and_never_shown(client, gemini, monkeypatch):
    monkeypatch.setenv("GEMINI_TEST_KEY", "AIzaSy-wrong-key-0123456789abcdef")
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="google:gemini-ok", messages=HELLO)
    assert err.value.status_code == 502 and "credentials" in err.value.body["message"]
    assert "AIzaSy" not in err.value.response.text
    assert "key=" not in gemini.requests[-1]["path"]  # the key travels in a header only


def test_a_slow_upstream_is_a_504(client, gemini):
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="google:gemini-slow", messages=HELLO, stream=stream)
        assert (err.value.status_code, err.value.code) == (504, "upstream_timeout")


def test_a_cut_answer_is_a_502(client, gemini):
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="google:gemini-cut", messages=HELLO)
    assert err.value.code == "upstream_error"


def test_a_cut_stream_ends_with_an_error_event_and_is_charged_for_what_was_relayed(gateway_url, api_key, gemini,
                                                                                   org):
    resp = sse_post(gateway_url, api_key, "google:gemini-cut")
    assert resp.status_code == 200 and '"Hello"' in resp.text
    assert "upstream_error" in resp.text and "[DONE]" not in resp.text
    record = booked(resp.headers["x-request-id"])
    assert (record.status, record.basis, record.completion_tokens) == ("upstream_error", "partial", 1)
    assert record.cost == (record.prompt_tokens * INPUT + 1 * OUTPUT) / 1_000_000


def test_an_error_event_mid_stream_ends_it_with_an_error(gateway_url, api_key, gemini):
    resp = sse_post(gateway_url, api_key, "google:gemini-error-event")
    assert "overloaded" in resp.text and "[DONE]" not in resp.text


@pytest.mark.parametrize("stream", [False, True])
def test_cached_and_thoughts_tokens_are_billed_to_the_picodollar(client, gemini, org, stream):
    raw = client.chat.completions.with_raw_response.create(model="google:gemini-thinking", messages=HELLO,
                                                           stream=stream)
    if stream:
        usage = list(raw.parse())[-1].usage
    else:
        usage = raw.parse().usage
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (112, 100)
    assert (usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (23, 20)
    record = booked(raw.headers["x-request-id"])
    # 12 fresh prompt tokens, 100 cached ones at the cached price, 3 answer + 20 thinking tokens as output.
    cost = (12 * INPUT + 100 * CACHED + 23 * OUTPUT) / 1_000_000
    assert cost == Decimal("0.0000686")
    assert (record.prompt_tokens, record.cached_tokens, record.completion_tokens, record.reasoning_tokens) == (
        112, 100, 23, 20)
    assert (record.basis, record.cost, record.ledger_entry.amount) == ("provider", cost, -cost)
    assert balance(org) == Decimal("100") - cost


def test_an_unconfigured_key_is_a_502_without_an_upstream_call(client, gemini, catalog, gemini_upstream,
                                                               monkeypatch):
    load_catalog(gemini_catalog(catalog.base_url, gemini_upstream.base_url, key_env="GEMINI_KEY_NOT_SET"))
    monkeypatch.delenv("GEMINI_KEY_NOT_SET", raising=False)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="google:gemini-ok", messages=HELLO)
    assert "not configured" in err.value.body["message"]
    assert gemini_upstream.requests == [] and API_KEY not in err.value.response.text
