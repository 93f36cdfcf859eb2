"""Every error of the contract's table, as the official openai SDK sees it: the matching
exception class, `.code`, `.status_code`, and a request id that the header and the
envelope agree on. Streams that break after the first byte are read raw, too."""

import json
import time

import openai
import pytest
import requests

from gateway.routing.catalog import forget_routes
from gateway.models import CatalogModel
from tests.conftest import UPSTREAM_SECRET


pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]


def assert_envelope(exc: openai.APIStatusError, cls, status: int, code: str, error_type: str | None = None):
    assert type(exc) is cls, f"{type(exc).__name__} is not {cls.__name__}"
    assert exc.status_code == status
    assert exc.code == code
    if error_type is not None:
        assert exc.type == error_type
    # exc.request_id comes from the x-request-id header; the envelope repeats it.
    assert exc.request_id and len(exc.request_id) == 36
    assert exc.response.headers["x-request-id"] == exc.request_id
    payload = exc.response.json()
    assert payload["request_id"] == exc.request_id
    assert set(payload) == {"error", "request_id"}
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert isinstance(exc.body, dict) and exc.body["message"]  # the SDK unwraps "error"
    return payload


def create_error(client, **kwargs) -> openai.APIStatusError:
    kwargs.setdefault("messages", HELLO)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(**kwargs)
    return err.value


# -- the caller's own mistakes ---------------------------------------------------------


def test_it_rejects_an_invalid_key_as_authentication_error(gateway_url, catalog):
    bad = openai.OpenAI(base_url=gateway_url, api_key="sk-" + "x" * 43, max_retries=0, timeout=20)
    exc = create_error(bad, model="demo:echo")
    assert_envelope(exc, openai.AuthenticationError, 401, "invalid_api_key", "invalid_request_error")


def test_it_rejects_unknown_models_as_not_found(client):
    for model in ["mock:no-such-model", "nosuchprovider:x", "gpt-4o"]:
        exc = create_error(client, model=model)
        assert_envelope(exc, openai.NotFoundError, 404, "model_not_found", "invalid_request_error")
        assert exc.param == "model"
        assert model in exc.body["message"]
    assert "provider:modelId" in exc.body["message"]


def test_it_rejects_a_disabled_model_as_not_found(client):
    CatalogModel.objects.filter(provider__slug="demo", name="echo").update(enabled=False)
    forget_routes()
    exc = create_error(client, model="demo:echo")
    assert_envelope(exc, openai.NotFoundError, 404, "model_not_found")
    assert "disabled" in exc.body["message"]


def test_it_rejects_a_bad_body_as_bad_request(client):
    exc = create_error(client, model="demo:echo", messages=[{"role": "wizard", "content": "hi"}])
    assert_envelope(exc, openai.BadRequestError, 400, "invalid_value", "invalid_request_error")
    assert exc.param == "messages[0].role"
    exc = create_error(client, model="demo:echo", messages=[], temperature=1)
    assert_envelope(exc, openai.BadRequestError, 400, "invalid_value")
    assert exc.param == "messages"


def test_it_never_answers_500_to_a_json_array_or_no_body(client):
    for body in ([{"model": "demo:echo"}], None):
        with pytest.raises(openai.APIStatusError) as err:
            client.post("/chat/completions", body=body, cast_to=object)
        assert_envelope(err.value, openai.BadRequestError, 400, "invalid_json")


# -- the upstream's mistakes ------------------------------------------------------------


def test_it_keeps_the_upstreams_400_message_param_and_code(client):
    exc = create_error(client, model="mock:fail-400")
    assert_envelope(exc, openai.BadRequestError, 400, "invalid_value", "invalid_request_error")
    assert exc.body["message"] == "Invalid 'temperature': must be <= 2."
    assert exc.param == "temperature"


def test_it_keeps_the_upstreams_400_when_streaming(client):
    exc = create_error(client, model="mock:fail-400", stream=True)
    assert_envelope(exc, openai.BadRequestError, 400, "invalid_value", "invalid_request_error")
    assert exc.body["message"] == "Invalid 'temperature': must be <= 2."
    assert exc.param == "temperature"


def test_it_passes_the_upstreams_429_on_as_rate_limit_error(client):
    exc = create_error(client, model="mock:fail-429")
    assert type(exc) is openai.RateLimitError and exc.status_code == 429
    assert exc.response.json()["request_id"] == exc.request_id
    assert exc.response.headers.get("retry-after") == "1"


def test_it_keeps_the_upstreams_429_type_and_code(client):
    exc = create_error(client, model="mock:fail-429")
    assert_envelope(exc, openai.RateLimitError, 429, "rate_limit_exceeded", "requests")
    assert exc.body["message"] == "Rate limit reached for requests"


def test_it_keeps_the_upstreams_429_type_and_code_when_streaming(client):
    exc = create_error(client, model="mock:fail-429", stream=True)
    assert_envelope(exc, openai.RateLimitError, 429, "rate_limit_exceeded", "requests")
    assert exc.response.headers.get("retry-after") == "1"


def test_it_answers_502_when_the_upstream_fails(client):
    exc = create_error(client, model="mock:fail-500")
    assert_envelope(exc, openai.InternalServerError, 502, "upstream_error", "api_error")


@pytest.mark.parametrize("stream", [False, True])
def test_it_never_leaks_the_upstream_key_when_the_upstream_refuses_it(client, stream):
    exc = create_error(client, model="mock:fail-401", stream=stream)
    assert_envelope(exc, openai.InternalServerError, 502, "upstream_error", "api_error")
    text = exc.response.text
    assert UPSTREAM_SECRET not in text
    assert "sk-upstr" not in text and "cret" not in text
    assert "invalid_api_key" not in text  # the caller's key is fine; do not blame it


def test_it_answers_502_to_a_malformed_upstream_answer(client):
    for scenario in ["bad-json", "not-an-object", "cut-mid-stream"]:
        exc = create_error(client, model=f"mock:{scenario}")
        assert_envelope(exc, openai.InternalServerError, 502, "upstream_error", "api_error")


def test_it_answers_504_when_the_upstream_is_too_slow(client):
    started = time.monotonic()
    exc = create_error(client, model="mock:slow")
    elapsed = time.monotonic() - started
    assert_envelope(exc, openai.InternalServerError, 504, "upstream_timeout", "api_error")
    assert 1.5 < elapsed < 3.0  # the provider's 2 s timeout, not the upstream's 3 s sleep


def test_a_stream_failing_before_its_first_chunk_is_a_plain_json_error(client, gateway_url, api_key):
    exc = create_error(client, model="mock:fail-500", stream=True)
    assert_envelope(exc, openai.InternalServerError, 502, "upstream_error", "api_error")
    assert exc.response.headers["content-type"].startswith("application/json")

    raw = requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                        json={"model": "mock:fail-500", "messages": HELLO, "stream": True}, timeout=10)
    assert raw.status_code == 502
    assert raw.headers["content-type"].startswith("application/json")
    assert "data:" not in raw.text
    assert raw.json()["request_id"] == raw.headers["x-request-id"]


def test_a_stream_timing_out_before_its_first_byte_is_a_504(client):
    exc = create_error(client, model="mock:slow", stream=True)
    assert_envelope(exc, openai.InternalServerError, 504, "upstream_timeout", "api_error")


# -- streams that break after the first byte --------------------------------------------


def read_sse(gateway_url: str, api_key: str, model: str) -> tuple[requests.Response, list[str]]:
    resp = requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                         json={"model": model, "messages": HELLO, "stream": True}, stream=True, timeout=10)
    body = resp.content.decode()
    assert body.endswith("\n\n")
    events = body[:-2].split("\n\n")
    assert all(e.startswith("data: ") for e in events)
    return resp, [e[len("data: "):] for e in events]


@pytest.mark.parametrize(
    ("scenario", "code", "first_events"),
    [
        ("cut-mid-stream", "upstream_error", 2),
        ("error-event", "upstream_error", 2),
        ("bad-json", "upstream_error", 1),
        ("slow-stream", "upstream_timeout", 1),
    ],
)
def test_a_stream_breaking_after_the_first_byte_ends_with_one_error_event(
    gateway_url, api_key, catalog, scenario, code, first_events
):
    resp, events = read_sse(gateway_url, api_key, f"mock:{scenario}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    request_id = resp.headers["x-request-id"]
    assert "[DONE]" not in events
    *chunks, last = events
    assert len(chunks) == first_events
    for chunk in map(json.loads, chunks):
        assert chunk["object"] == "chat.completion.chunk" and chunk["model"] == f"mock:{scenario}"
    assert json.loads(chunks[0])["choices"][0]["delta"]["role"] == "assistant"
    error = json.loads(last)
    assert set(error) == {"error", "request_id"}
    assert error["request_id"] == request_id
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["code"] == code and error["error"]["type"] == "api_error"
    assert error["error"]["message"]
    assert UPSTREAM_SECRET not in resp.text


def test_the_sdk_raises_api_error_when_a_stream_breaks(client):
    for scenario in ["cut-mid-stream", "error-event", "bad-json"]:
        stream = client.chat.completions.create(model=f"mock:{scenario}", messages=HELLO, stream=True)
        received = []
        with pytest.raises(openai.APIError) as err:
            for chunk in stream:
                received.append(chunk)
        assert received and received[0].choices[0].delta.role == "assistant"
        assert err.value.code == "upstream_error", scenario
        assert err.value.type == "api_error"


def test_the_sdk_raises_api_error_when_a_stream_times_out(client):
    stream = client.chat.completions.create(model="mock:slow-stream", messages=HELLO, stream=True)
    started = time.monotonic()
    with pytest.raises(openai.APIError) as err:
        list(stream)
    assert err.value.code == "upstream_timeout"
    assert time.monotonic() - started < 3.0
