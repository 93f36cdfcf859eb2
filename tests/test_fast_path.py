"""The hot endpoints skip the console's middleware and DRF (gateway.fast_path) but must
answer exactly as the rest of /v1 does: request id, envelope, host check, size guard,
no session or CSRF machinery."""

import json
import logging

import pytest
import requests

from gateway import fast_path
from tests.test_hardening import check_error

HELLO = [{"role": "user", "content": "Say hello"}]


def chat(gateway_url, api_key, body=None, headers=None):
    all_headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", **(headers or {})}
    return requests.post(f"{gateway_url}/chat/completions", data=json.dumps(body or {"model": "demo:echo",
                         "messages": HELLO}), headers=all_headers, timeout=20)


def test_a_hot_request_carries_the_api_headers_and_no_console_machinery(gateway_url, api_key, catalog):
    resp = chat(gateway_url, api_key)
    assert resp.status_code == 200
    assert len(resp.headers["x-request-id"]) == 36
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in resp.headers and "Cookie" not in resp.headers.get("Vary", "")


def test_the_hot_path_answers_before_the_console_middleware_runs(rf, monkeypatch):
    # If the request fell through, get_response would be called: it must not be.
    middleware = fast_path.HotPathMiddleware(lambda request: pytest.fail("fell through to the middleware chain"))
    served = []
    monkeypatch.setitem(fast_path.HOT_ENDPOINTS, "/v1/chat/completions",
                        lambda request, key: served.append(key) or fast_path.HttpResponse("{}"))
    monkeypatch.setattr(fast_path, "key_from_authorization", lambda header: "the key")
    response = middleware(rf.post("/v1/chat/completions", "{}", content_type="application/json"))
    assert served == ["the key"] and response.status_code == 200


def test_other_methods_and_paths_still_go_through_django(gateway_url, api_key, catalog):
    resp = requests.get(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"}, timeout=20)
    check_error(resp, 405, "method_not_allowed")
    resp = requests.post(f"{gateway_url}/chat/completions/", headers={"Authorization": f"Bearer {api_key}"},
                         timeout=20)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_url"


def test_a_host_not_allowed_is_refused_in_the_envelope(gateway_url, api_key, catalog):
    resp = chat(gateway_url, api_key, headers={"Host": "evil.example"})
    check_error(resp, 400, "invalid_host")


def test_an_oversized_authorization_header_is_refused_before_lookup(gateway_url, catalog):
    resp = chat(gateway_url, "sk-" + "a" * 2000)
    check_error(resp, 401, "invalid_api_key")
    assert "longer than 1024 bytes" in resp.json()["error"]["message"]


def test_a_crash_on_the_hot_path_is_a_500_envelope_and_a_log_line(gateway_url, api_key, catalog, monkeypatch,
                                                                   caplog):
    def explode(request, key):
        raise RuntimeError("boom")

    monkeypatch.setitem(fast_path.HOT_ENDPOINTS, "/v1/chat/completions", explode)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        resp = chat(gateway_url, api_key)
    message = check_error(resp, 500, "internal_error", error_type="api_error")
    assert "boom" not in message and "boom" not in resp.text
    assert any(resp.headers["x-request-id"] in r.getMessage() for r in caplog.records)
