"""Bad requests and bad keys against the live gateway, over plain HTTP: each gets the
right status, OpenAI's envelope with the request id, a message a person can act on,
and never a 500."""

import json
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from gateway.routing.catalog import forget_routes
from gateway.keys.api_keys import mint_api_key, revoke_api_key
from gateway.models import ApiKey, CatalogModel


pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]
OK_BODY = {"model": "demo:echo", "messages": HELLO}


def check_error(resp: requests.Response, status: int, code: str, param=None, error_type="invalid_request_error"):
    """The response is the contract's envelope for this error; returns its message."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    payload = resp.json()
    assert set(payload) == {"error", "request_id"}
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["type"] == error_type
    assert error["param"] == param
    request_id = resp.headers["x-request-id"]
    assert len(request_id) == 36 and payload["request_id"] == request_id
    message = error["message"]
    assert isinstance(message, str) and len(message) > 10 and message[0] not in "<{["
    assert "Traceback" not in resp.text and "<html" not in resp.text.lower()
    return message


@pytest.fixture
def post(gateway_url, api_key, catalog):
    """POST /v1/chat/completions with a valid key; `data` is sent raw, `body` as JSON."""

    def send(body=None, *, data=None, headers=None):
        all_headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        all_headers.update(headers or {})
        if body is not None:
            data = json.dumps(body)
        return requests.post(f"{gateway_url}/chat/completions", data=data, headers=all_headers, timeout=10)

    return send


def test_the_happy_path_works(post):
    resp = post(OK_BODY)
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "Say hello"


# -- the body ---------------------------------------------------------------------------


NOT_AN_OBJECT = [
    (None, "empty"),
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"model=demo:echo", "not valid JSON"),
    (b'{"model": "demo:echo", ', "not valid JSON"),
    (b"\xff\xfe garbage", "not valid JSON"),
    (b'[{"model": "demo:echo"}]', "JSON object"),
    (b'"hello"', "JSON object"),
    (b"42", "JSON object"),
    (b"null", "JSON object"),
]


def test_it_rejects_a_body_that_is_not_a_json_object(post):
    # One test for the whole table: a live-server test costs a database flush.
    for data, words in NOT_AN_OBJECT:
        message = check_error(post(data=data), 400, "invalid_json")
        assert words in message, data


def test_it_rejects_deeply_nested_json_without_crashing(post):
    check_error(post(data=b"[" * 5_000 + b"]" * 5_000), 400, "invalid_json")


MALFORMED = [
        ({"model": "demo:echo"}, 400, "missing_required_parameter", "messages"),
        ({"model": "demo:echo", "messages": None}, 400, "missing_required_parameter", "messages"),
        ({"model": "demo:echo", "messages": []}, 400, "invalid_value", "messages"),
        ({"model": "demo:echo", "messages": "hello"}, 400, "invalid_type", "messages"),
        ({"model": "demo:echo", "messages": {"role": "user", "content": "hi"}}, 400, "invalid_type", "messages"),
        ({"model": "demo:echo", "messages": ["hello"]}, 400, "invalid_type", "messages[0]"),
        ({"model": "demo:echo", "messages": [{"content": "hi"}]}, 400, "missing_required_parameter",
         "messages[0].role"),
        ({"model": "demo:echo", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "invalid_value",
         "messages[0].role"),
        ({"model": "demo:echo", "messages": [{"role": 1, "content": "hi"}]}, 400, "invalid_value",
         "messages[0].role"),
        ({"model": "demo:echo", "messages": [{"role": "user", "content": 42}]}, 400, "invalid_type",
         "messages[0].content"),
        ({"model": "demo:echo", "messages": [{"role": "user"}]}, 400, "missing_required_parameter",
         "messages[0].content"),
        ({"model": "demo:echo", "messages": [{"role": "user", "content": [42]}]}, 400, "invalid_type",
         "messages[0].content[0]"),
        ({"model": "demo:echo", "messages": HELLO + [{"role": "user", "content": {"a": 1}}]}, 400, "invalid_type",
         "messages[1].content"),
        ({"messages": HELLO}, 400, "missing_required_parameter", "model"),
        ({"model": None, "messages": HELLO}, 400, "missing_required_parameter", "model"),
        ({"model": 42, "messages": HELLO}, 400, "invalid_type", "model"),
        ({"model": "", "messages": HELLO}, 400, "invalid_type", "model"),
        ({"model": ["demo:echo"], "messages": HELLO}, 400, "invalid_type", "model"),
        ({**OK_BODY, "stream": "true"}, 400, "invalid_type", "stream"),
        ({**OK_BODY, "stream": 1}, 400, "invalid_type", "stream"),
        ({**OK_BODY, "stream": True, "stream_options": "usage"}, 400, "invalid_type", "stream_options"),
        ({**OK_BODY, "max_tokens": 0}, 400, "invalid_value", "max_tokens"),
        ({**OK_BODY, "max_tokens": -5}, 400, "invalid_value", "max_tokens"),
        ({**OK_BODY, "max_tokens": "10"}, 400, "invalid_type", "max_tokens"),
        ({**OK_BODY, "max_tokens": True}, 400, "invalid_type", "max_tokens"),
        ({**OK_BODY, "max_tokens": 1.5}, 400, "invalid_type", "max_tokens"),
        ({**OK_BODY, "max_completion_tokens": 0}, 400, "invalid_value", "max_completion_tokens"),
        ({**OK_BODY, "temperature": 5}, 400, "invalid_value", "temperature"),
        ({**OK_BODY, "temperature": -1}, 400, "invalid_value", "temperature"),
        ({**OK_BODY, "temperature": "hot"}, 400, "invalid_type", "temperature"),
        ({**OK_BODY, "temperature": False}, 400, "invalid_type", "temperature"),
        ({**OK_BODY, "top_p": 1.5}, 400, "invalid_value", "top_p"),
        ({**OK_BODY, "n": 0}, 400, "invalid_value", "n"),
]


def test_it_rejects_a_malformed_request_precisely(post):
    for body, status, code, param in MALFORMED:
        try:
            message = check_error(post(body), status, code, param=param)
            assert param.split(".")[0].split("[")[0] in message
        except AssertionError as e:
            raise AssertionError(f"for {body!r}: {e}") from e


def test_it_rejects_a_model_without_provider_and_explains_the_form(post):
    message = check_error(post({"model": "gpt-4o", "messages": HELLO}), 404, "model_not_found", param="model")
    assert "'gpt-4o'" in message and "provider:modelId" in message


def test_it_rejects_an_unknown_model(post):
    for model in [":echo", "demo:", "mock:nope", "nope:echo", "demo:echo ", "DEMO:echo"]:
        message = check_error(post({"model": model, "messages": HELLO}), 404, "model_not_found", param="model")
        assert model.strip() in message


def test_it_rejects_a_disabled_model(post):
    assert post(OK_BODY).status_code == 200
    CatalogModel.objects.filter(provider__slug="demo", name="echo").update(enabled=False)
    forget_routes()
    message = check_error(post(OK_BODY), 404, "model_not_found", param="model")
    assert "disabled" in message


def test_it_rejects_a_model_outside_the_keys_allowed_models(gateway_url, org, catalog):
    _, secret = mint_api_key(org, allowed_models=["mock:ok"])
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"{gateway_url}/chat/completions"
    resp = requests.post(url, json=OK_BODY, headers=headers, timeout=10)
    message = check_error(resp, 404, "model_not_found", param="model")
    assert "not allowed" in message
    assert requests.post(url, json={**OK_BODY, "model": "mock:ok"}, headers=headers, timeout=10).status_code == 200


def test_it_rejects_a_10_mb_body_quickly(post):
    big = json.dumps({**OK_BODY, "messages": [{"role": "user", "content": "x" * (10 * 1024 * 1024)}]})
    started = time.monotonic()
    resp = post(data=big)
    message = check_error(resp, 413, "request_too_large")
    assert "8388608" in message
    assert time.monotonic() - started < 3


def test_a_body_just_under_the_limit_is_read(post):
    content = "x" * (8 * 1024 * 1024 - 200)
    resp = post({**OK_BODY, "messages": [{"role": "user", "content": content}], "max_tokens": 1})
    assert resp.status_code == 200, resp.text[:300]


# -- the key ----------------------------------------------------------------------------


def key_error(gateway_url, authorization: str | None):
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = requests.post(f"{gateway_url}/chat/completions", json=OK_BODY, headers=headers, timeout=10)
    message = check_error(resp, 401, "invalid_api_key")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    return message


def test_it_rejects_a_request_without_authorization(gateway_url, catalog):
    assert "Missing API key" in key_error(gateway_url, None)


def test_it_rejects_a_malformed_authorization_header(gateway_url, catalog):
    for header in ["Basic dXNlcjpwYXNz", "Token sk-abc", "Bearer", "Bearer ", "sk-" + "a" * 43]:
        assert "Bearer sk-" in key_error(gateway_url, header), header


def test_the_bearer_scheme_is_case_insensitive(gateway_url, api_key, catalog):
    resp = requests.post(f"{gateway_url}/chat/completions", json=OK_BODY,
                         headers={"Authorization": f"bearer {api_key}"}, timeout=10)
    assert resp.status_code == 200


def test_trailing_whitespace_after_the_key_is_dropped_by_the_http_server(gateway_url, api_key, catalog):
    # RFC 9110 5.5: optional whitespace around a field value is not part of it; the
    # server strips it before the gateway sees the header, so the key works.
    resp = requests.post(f"{gateway_url}/chat/completions", json=OK_BODY,
                         headers={"Authorization": f"Bearer {api_key}  \t"}, timeout=10)
    assert resp.status_code == 200


def test_it_rejects_extra_whitespace_between_bearer_and_the_key(gateway_url, api_key, catalog):
    for separator in ["  ", " \t", "\t"]:
        message = key_error(gateway_url, f"Bearer{separator}{api_key}")
        assert "whitespace" in message or "Bearer sk-" in message, repr(separator)


def test_it_rejects_a_key_with_inner_whitespace(gateway_url, api_key, catalog):
    message = key_error(gateway_url, f"Bearer {api_key[:20]} {api_key[20:]}")
    assert "Malformed API key" in message


def test_it_rejects_a_malformed_key(gateway_url, catalog):
    for secret in ["sk-short", "pk-" + "a" * 43, "sk-" + "é" * 43, "sk-" + "a" * 42 + "!"]:
        assert "Malformed API key" in key_error(gateway_url, f"Bearer {secret}"), secret


def test_it_rejects_an_unknown_key_without_echoing_it(gateway_url, catalog):
    secret = "sk-" + "Q" * 43
    message = key_error(gateway_url, f"Bearer {secret}")
    assert "Incorrect API key" in message
    assert secret not in message


def test_it_rejects_a_revoked_key_at_once(gateway_url, org, catalog):
    key, secret = mint_api_key(org, name="soon revoked")
    url = f"{gateway_url}/chat/completions"
    assert requests.post(url, json=OK_BODY, headers={"Authorization": f"Bearer {secret}"}, timeout=10).ok
    revoke_api_key(key)  # must not wait for the key cache to expire
    message = key_error(gateway_url, f"Bearer {secret}")
    assert "revoked" in message and key.prefix in message


def test_it_rejects_an_expired_key(gateway_url, org, catalog):
    key, secret = mint_api_key(org, expires_at=timezone.now() - timedelta(minutes=1))
    message = key_error(gateway_url, f"Bearer {secret}")
    assert "expired" in message and key.prefix in message


def test_a_key_expiring_later_works(gateway_url, org, catalog):
    _, secret = mint_api_key(org, expires_at=timezone.now() + timedelta(days=1))
    resp = requests.post(f"{gateway_url}/chat/completions", json=OK_BODY,
                         headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert resp.status_code == 200


def test_a_key_checks_come_before_the_body(gateway_url, catalog):
    resp = requests.post(f"{gateway_url}/chat/completions", data=b"not json", timeout=10)
    check_error(resp, 401, "invalid_api_key")
    assert ApiKey.objects.count() == 0


# -- methods and paths --------------------------------------------------------------------


def test_it_answers_405_to_get_on_chat_completions(gateway_url, api_key, catalog):
    resp = requests.get(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                        timeout=10)
    assert "GET" in check_error(resp, 405, "method_not_allowed")


def test_it_answers_404_to_get_on_an_unknown_path(gateway_url, api_key):
    resp = requests.get(f"{gateway_url}/nope", headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
    assert "GET /v1/nope" in check_error(resp, 404, "unknown_url")


def test_it_answers_404_to_other_methods_on_an_unknown_path(gateway_url, api_key):
    for method in ["POST", "PUT", "DELETE"]:
        resp = requests.request(method, f"{gateway_url}/nope", headers={"Authorization": f"Bearer {api_key}"},
                                json={"model": "demo:echo"}, timeout=10)
        assert f"{method} /v1/nope" in check_error(resp, 404, "unknown_url")
