"""/v1/messages when things go wrong, through the anthropic SDK: Anthropic's error shape and
statuses for the caller's mistakes, money, limits and every upstream failure (4xx, 5xx,
overloaded, timeout), and streams cut after the first byte ending in `event: error` with a
partial charge."""

from decimal import Decimal

import anthropic
import pytest
import requests

from gateway.keys.api_keys import create_api_key, mint_api_key
from tests.billing_helpers import booked
from tests.messages_support import HELLO, anthropic_sdk, claude_sdk, upstreams  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _one_try(settings):
    settings.GATEWAY_RETRIES = 0  # each failure once: the retry policy is tests/test_failover.py's


def _error_of(call) -> tuple[int, dict, dict]:
    with pytest.raises(anthropic.APIStatusError) as err:
        call()
    response = err.value.response
    assert err.value.body["type"] == "error" and response.headers["request-id"] == response.headers["x-request-id"]
    assert err.value.body["request_id"] == response.headers["x-request-id"]
    return err.value.status_code, err.value.body["error"], response.headers


WHOLE = [
    ("claude:claude-bad-request", 400, "invalid_request_error"),
    ("mock:fail-400", 400, "invalid_request_error"),
    ("google:gemini-bad-request", 400, "invalid_request_error"),
    ("claude:claude-server-error", 502, "api_error"),
    ("claude:claude-overloaded", 529, "overloaded_error"),
    ("mock:fail-500", 502, "api_error"),
    ("google:gemini-server-error", 502, "api_error"),
    ("mock:fail-429", 429, "rate_limit_error"),
    ("claude:claude-slow", 504, "timeout_error"),
    ("google:gemini-slow", 504, "timeout_error"),
    ("claude:claude-cut", 502, "api_error"),  # streamed, a cut comes after the first byte: below
]
# Streamed, a failure before the first byte gets the same answer: one per protocol shows it.
STREAMED = [("google:gemini-bad-request", 400, "invalid_request_error"),
            ("claude:claude-overloaded", 529, "overloaded_error"), ("mock:fail-500", 502, "api_error")]


@pytest.mark.parametrize("model, status, error_type, stream",
                         [(*case, False) for case in WHOLE] + [(*case, True) for case in STREAMED])
def test_upstream_failures_in_anthropic_terms(claude_sdk, upstreams, model, status, error_type, stream):
    create = claude_sdk.messages.create
    got_status, error, headers = _error_of(lambda: create(model=model, max_tokens=10, messages=HELLO, stream=stream))
    assert (got_status, error["type"]) == (status, error_type)
    if status == 429:
        assert headers["retry-after"] == "1"
    record = booked(headers["x-request-id"])
    assert (record.status, record.cost) == ("upstream_error", 0)


@pytest.mark.parametrize("model", ["claude:claude-cut", "mock:cut-mid-stream", "claude:claude-error-event"])
def test_a_stream_cut_after_its_first_byte_ends_with_an_error_event_and_a_partial_charge(claude_sdk, upstreams,
                                                                                        model):
    texts = []
    with pytest.raises(anthropic.APIStatusError) as err:
        with claude_sdk.messages.stream(model=model, max_tokens=100, messages=HELLO) as stream:
            for event in stream:
                if event.type == "content_block_delta":
                    texts.append(event.delta.text)
            request_id = stream.response.headers["x-request-id"]
    assert texts and err.value.body["type"] == "error"
    expected = "overloaded_error" if model.endswith("error-event") else "api_error"
    assert err.value.body["error"]["type"] == expected
    record = booked(err.value.response.headers["x-request-id"])
    assert (record.status, record.basis) == ("upstream_error", "partial")
    assert record.completion_tokens >= 1 and record.prompt_tokens > 0
    prices = (record.input_per_mtok, record.output_per_mtok)
    assert record.cost == (record.prompt_tokens * prices[0] + record.completion_tokens * prices[1]) / 1_000_000


def test_an_empty_balance_is_402_billing_error(live_server, other_org, upstreams):
    _, secret = mint_api_key(other_org, name="broke")
    sdk = anthropic_sdk(live_server, secret)
    status, error, _ = _error_of(lambda: sdk.messages.create(model="mock:ok", max_tokens=10, messages=HELLO))
    assert (status, error["type"]) == (402, "billing_error") and "balance" in error["message"]
    assert not upstreams[0].requests  # refused before any upstream call


def test_a_key_spend_limit_is_402_and_its_rate_limit_429(live_server, org, upstreams):
    _, capped = create_api_key(org, name="capped", created_by=None, spend_limit=Decimal("0.0000001"))
    sdk = anthropic_sdk(live_server, capped)
    status, error, _ = _error_of(lambda: sdk.messages.create(model="mock:ok", max_tokens=10, messages=HELLO))
    assert (status, error["type"]) == (402, "billing_error") and "spend limit" in error["message"]
    _, limited = create_api_key(org, name="limited", created_by=None, rpm_limit=1)
    sdk = anthropic_sdk(live_server, limited)
    sdk.messages.create(model="demo:echo", max_tokens=10, messages=HELLO)
    status, error, headers = _error_of(lambda: sdk.messages.create(model="demo:echo", max_tokens=10, messages=HELLO))
    assert (status, error["type"]) == (429, "rate_limit_error") and int(headers["retry-after"]) >= 1


def test_the_callers_mistakes(live_server, api_key, upstreams, settings):
    sdk = anthropic_sdk(live_server, api_key)
    create = sdk.messages.create
    assert _error_of(lambda: create(model="mock:nope", max_tokens=10, messages=HELLO))[:2] == (
        404, {"type": "not_found_error", "message": "The model 'mock:nope' does not exist. GET /v1/models lists "
                                                    "the models you can use."})
    for body in ({"model": "demo:echo", "messages": HELLO}, {"model": "demo:echo", "max_tokens": 10},
                 {"model": "demo:echo", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}):
        status, error, _ = _error_of(lambda: sdk.post("/v1/messages", body=body, cast_to=object))
        assert (status, error["type"]) == (400, "invalid_request_error")
    assert "max_tokens: Field required" in _error_of(
        lambda: sdk.post("/v1/messages", body={"model": "demo:echo", "messages": HELLO}, cast_to=object))[1]["message"]
    status, error, _ = _error_of(lambda: anthropic_sdk(live_server, "sk-" + "x" * 43).messages.create(
        model="demo:echo", max_tokens=10, messages=HELLO))
    assert (status, error["type"]) == (401, "authentication_error")
    settings.GATEWAY_MAX_BODY_BYTES = 100
    status, error, _ = _error_of(lambda: create(model="demo:echo", max_tokens=10, messages=[
        {"role": "user", "content": "x" * 200}]))
    assert (status, error["type"]) == (413, "request_too_large")


def test_no_key_at_all_is_401_in_anthropic_shape(live_server, upstreams):
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        r = requests.post(f"{live_server.url}{path}", json={"model": "demo:echo"}, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert r.json()["type"] == "error" and r.headers["request-id"] == r.headers["x-request-id"]
