"""/v1 has one door: gateway.api.entry hands every API request to its lean DRF view, skipping
the console's middleware, with the request id, envelope, host check and size guard, and
no session or CSRF machinery. Nothing reads a body before the key is known to be good."""

import json
import logging
import socket
import sys
import time

import pytest
import requests

from gateway.api import entry
from gateway import pipeline
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


def test_the_entry_answers_before_the_console_middleware_runs(rf, monkeypatch):
    # If the request fell through, get_response would be called: it must not be.
    middleware = entry.ApiEntryMiddleware(lambda request: pytest.fail("fell through to the middleware chain"))
    served = []
    monkeypatch.setattr(pipeline, "serve", lambda surface, request, key: served.append((surface.name, key))
                        or entry.refusal_response(RuntimeError("stop here"), request.request_id))
    monkeypatch.setattr("gateway.api.auth.find_key", lambda secret: None)
    response = middleware(rf.post("/v1/chat/completions", "{}", content_type="application/json",
                                  HTTP_AUTHORIZATION="Bearer sk-" + "a" * 43))
    assert response.status_code == 401 and served == []  # DRF authenticated first, and refused
    assert response["x-request-id"]


def test_chat_is_served_by_the_drf_view_and_the_pipeline(gateway_url, api_key, catalog, monkeypatch):
    calls = []
    real_serve = pipeline.serve

    def serve(surface, request, key, body=None):
        # Called from the DRF view (the caller's frame), given Django's own request (DRF's
        # wrapper costs a failed lookup per attribute) and the key DRF's authentication found.
        view = sys._getframe(1).f_locals.get("self")
        calls.append((surface.name, type(view).__name__, type(request).__module__, type(key).__name__))
        return real_serve(surface, request, key, body)

    monkeypatch.setattr(pipeline, "serve", serve)
    assert chat(gateway_url, api_key).status_code == 200
    assert calls == [("chat", "ChatCompletionsView", "django.core.handlers.wsgi", "KeyIdentity")]


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


def test_a_crash_before_admission_is_a_500_envelope_and_a_log_line(gateway_url, api_key, catalog, monkeypatch,
                                                                    caplog):
    def explode(public_id, key):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "resolve_route", explode)
    with caplog.at_level(logging.ERROR, logger="gateway.api.errors"):
        resp = chat(gateway_url, api_key)
    message = check_error(resp, 500, "internal_error", error_type="api_error")
    assert "boom" not in message and "boom" not in resp.text
    assert any(resp.headers["x-request-id"] in r.getMessage() for r in caplog.records)


def test_a_body_is_not_read_before_the_key_is_known_to_be_valid(live_server, catalog):
    # Headers announcing 8 MiB and no body: a server that waited for the body before
    # checking the key would never answer.
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                      f"Authorization: Bearer sk-{'b' * 43}\r\nContent-Length: {8 * 1024 * 1024}\r\n\r\n").encode())
        started = time.monotonic()
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 401") and time.monotonic() - started < 5


def test_a_wrong_method_is_a_405_that_says_what_is_allowed(client, db):
    import requests as http

    base = str(client.base_url).rstrip("/")
    answer = http.get(f"{base}/chat/completions", headers={"Authorization": f"Bearer {client.api_key}"}, timeout=10)
    assert answer.status_code == 405 and "POST" in answer.headers["Allow"]
    assert answer.json()["error"]["code"] == "method_not_allowed"
    ok = http.post(f"{base}/chat/completions", headers={"Authorization": f"Bearer {client.api_key}"}, timeout=10,
                   json={"model": "mock:ok", "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200 and "Allow" not in ok.headers and "Vary" not in ok.headers
