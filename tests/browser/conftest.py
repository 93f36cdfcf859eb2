"""Fixtures for the browser tests: one headless Chromium per module, a fresh context per test."""

import os
from decimal import Decimal

import pytest

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, DESKTOP, TIMEOUT_MS, skip_or_fail_without_browser
from tests.conftest import UPSTREAM_SECRET
from tests.console.conftest import alice, bob, dave  # noqa: F401  (the console's people, as fixtures)


@pytest.fixture(scope="module")
def _allow_orm_beside_playwright():
    # Playwright's sync API keeps an asyncio loop running in this thread, and Django's ORM
    # refuses to run where a loop is running. The test code is synchronous all the same
    # (the loop only serves Playwright's greenlet), so lift the guard for these tests only.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="module")
def browser(_allow_orm_beside_playwright):
    skip_or_fail_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (its own cookies) at desktop size. JavaScript errors on any
    page fail the test at its end."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    yield page
    context.close()
    assert not errors, "JavaScript errors in the console:\n" + "\n".join(errors)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


CATALOG = """
providers:
  demo:
    protocol: mock
    models:
      echo: {{input_per_mtok: "0.10", output_per_mtok: "0.20"}}
  deepseek:
    protocol: openai
    base_url: {upstream}
    api_key_env: MOCK_UPSTREAM_API_KEY
    models:
      deepseek-chat: {{input_per_mtok: "0.27", output_per_mtok: "1.10", cached_input_per_mtok: "0.07", max_output_tokens: 8192, context_window: 65536}}
  openai:
    protocol: openai
    base_url: https://api.openai.example/v1
    api_key_env: MIXGATEWAY_TEST_UNSET_KEY
    models:
      gpt-4o-mini: {{input_per_mtok: "0.15", output_per_mtok: "0.60", cached_input_per_mtok: "0.075", max_output_tokens: 16384}}
      gpt-4o: {{input_per_mtok: "2.50", output_per_mtok: "10.00"}}
      text-embedding-3-small: {{input_per_mtok: "0.02", output_per_mtok: "0"}}
"""


@pytest.fixture
def console_catalog(upstream, monkeypatch, settings):
    """Every state a model can be in: available (demo:echo), cooling down (deepseek:…),
    provider not configured (openai:…), disabled (openai:gpt-4o)."""
    from gateway.routing.catalog_loader import load_catalog
    from gateway.models import CatalogModel
    from gateway.routing.resilience import cooldowns

    monkeypatch.setenv("MOCK_UPSTREAM_API_KEY", UPSTREAM_SECRET)
    monkeypatch.delenv("MIXGATEWAY_TEST_UNSET_KEY", raising=False)
    load_catalog(CATALOG.format(upstream=upstream.base_url))
    CatalogModel.objects.filter(name="gpt-4o").update(enabled=False)
    settings.GATEWAY_COOLDOWN_AFTER_FAILURES = 1
    cooldowns().failed(f"deepseek:deepseek-chat@{upstream.base_url.rstrip('/')}")
    return upstream


@pytest.fixture
def people(org, alice, dave, bob):  # dave is the admin, bob a member
    """Alpha Labs with history: named keys with usage, an invitation, a role change, and the
    low-balance alert that usage set off."""
    from billing.alerts import deliveries_of
    from billing.low_balance import set_low_balance_threshold
    from console.tenancy import actions as tenancy
    from console.tenancy.models import Membership
    from gateway.keys.api_keys import create_api_key
    from gateway.models import StoredResponse
    from tests.console.test_usage import usage

    backend, _ = create_api_key(org, name="backend", created_by=alice, allowed_models=["deepseek:deepseek-chat"],
                                rpm_limit=60, tpm_limit=100_000, spend_limit=Decimal("5"), budget_period="daily")
    batch, _ = create_api_key(org, name="nightly batch", created_by=alice)
    set_low_balance_threshold(org.pk, Decimal("100"), actor=alice)  # the first request's cost crosses it
    for n, key in enumerate([backend, backend, batch, backend]):
        usage(org, key=key, model="deepseek:deepseek-chat", prompt=1200 + 300 * n, completion=80 + 10 * n,
              request_id=f"req-console-{n}")
    tokens = []
    tenancy.invite_member(org, "erin@example.com", "member", actor=alice,
                          accept_url_for=lambda token: tokens.append(token) or f"/invitations/{token}/")
    tenancy.change_role(Membership.objects.get(user=bob), "admin", actor=alice)
    tenancy.change_role(Membership.objects.get(user=bob), "member", actor=alice)
    StoredResponse.objects.create(
        response_id="resp_console0", organization=org, api_key=backend, model="deepseek:deepseek-chat",
        status="completed", input_items=[{"id": "msg_in0", "type": "message", "role": "user",
                                          "content": [{"type": "input_text", "text": "Summarise the week"}]}],
        output_items=[{"id": "msg_out0", "type": "message", "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "A quiet week.", "annotations": []}]}],
        usage={"input_tokens": 12, "output_tokens": 4, "total_tokens": 16, "cost": "0.0000076"})
    return {"invitation_token": tokens[0], "key": backend, "request_id": "req-console-0",
            "response_id": "resp_console0", "alert_delivery": deliveries_of(org).get()}
