"""The console pages of the second pass, in a real browser against the live server, at
desktop (1280×800) and phone (390×844) sizes: the Models page's availability, the
playground's settings and in-place errors, usage search and totals, the audit log's
sentences, navigation by role, the styled 403 and 404 pages and the invited sign-up.

On every page: no JavaScript or console error, and no sideways scroll on the phone. With
SCREENSHOTS=1 it writes the docs/screenshots/ the README shows for these pages:
    SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser -p no:xdist
"""

import re
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.browser.support import DESKTOP, PHONE, screenshot, skip_or_fail_without_browser
from tests.conftest import UPSTREAM_SECRET
from tests.console.conftest import alice, bob, dave  # noqa: F401  (the console's people, as fixtures)

skip_or_fail_without_browser()

from playwright.sync_api import expect  # noqa: E402  (only once the browser is known to be there)

pytestmark = pytest.mark.django_db(transaction=True)

LONG_WORD = "x" * 400  # one unbroken word, far wider than any card

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
    """Alpha Labs with history: named keys with usage, an invitation, a role change."""
    from console.tenancy import actions as tenancy
    from console.tenancy.models import Membership
    from gateway.keys.api_keys import create_api_key
    from tests.console.test_usage import usage

    backend, _ = create_api_key(org, name="backend", created_by=alice)
    batch, _ = create_api_key(org, name="nightly batch", created_by=alice)
    for n, key in enumerate([backend, backend, batch, backend]):
        usage(org, key=key, model="deepseek:deepseek-chat", prompt=1200 + 300 * n, completion=80 + 10 * n,
              request_id=f"req-console-{n}")
    tokens = []
    tenancy.invite_member(org, "erin@example.com", "member", actor=alice,
                          accept_url_for=lambda token: tokens.append(token) or f"/invitations/{token}/")
    tenancy.change_role(Membership.objects.get(user=bob), "admin", actor=alice)
    tenancy.change_role(Membership.objects.get(user=bob), "member", actor=alice)
    return {"invitation_token": tokens[0]}


def session_for(browser, base: str, user, viewport: dict):
    """A browser context logged in as `user` (a session made by Django's test client), or
    anonymous for None, collecting every JavaScript and console error."""
    context = browser.new_context(viewport=viewport)
    if user is not None:
        client = Client()
        client.force_login(user)
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "url": base,
                              "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(f"{page.url}: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(f"{page.url}: {msg.text}"))
    return context, page


def visit(page, base: str, path: str, status: int = 200):
    response = page.goto(base + path)
    assert response is not None and response.status == status, f"GET {path} answered {response and response.status}"
    if status >= 400:
        expected_failure(page, status)
    return response


def expected_failure(page, status: int) -> None:
    """Chromium logs every answer of `status` as a console error; forgive the one the test
    asked for (a 404 page, a refused playground request), and only that one."""
    said = f"the server responded with a status of {status}"
    forgiven = next((e for e in page.errors if said in e), None)
    assert forgiven is not None, f"Chromium logged no {status}"
    page.errors.remove(forgiven)


def assert_fits(page, where: str) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{where}: the page scrolls sideways ({width[0]} px wide in {width[1]})"


def use_playground(page, base: str) -> None:
    visit(page, base, "/playground/")
    options = page.locator("#model option")
    assert "openai:text-embedding-3-small" not in options.all_inner_texts()
    expect(page.locator('#model option[value="openai:gpt-4o-mini"]')).to_be_disabled()
    page.fill("#system", "Answer briefly.")
    page.fill("#prompt", f"Please repeat this word: {LONG_WORD}")
    page.get_by_role("button", name="Send", exact=True).click()
    reply = page.locator(".turn-assistant .turn-text")
    expect(reply).to_contain_text(LONG_WORD)  # demo:echo answers with the last user message
    card = page.locator("section.card").bounding_box()
    text = reply.bounding_box()
    assert text["x"] + text["width"] <= card["x"] + card["width"], "the long word overflows its card"
    expect(page.locator("#usage")).to_contain_text("USD")
    assert not re.search(r"\de-\d", page.locator("#usage").inner_text()), "a cost printed with an exponent"

    # A setting the gateway refuses: the message stays, the error stands under it, and no
    # empty answer is left behind.
    page.fill("#max_tokens", "1000000000")
    page.fill("#prompt", "And now a very long answer")
    page.get_by_role("button", name="Send", exact=True).click()
    failed = page.locator(".turn-failed")
    expect(failed).to_contain_text("And now a very long answer")
    expect(failed.locator(".message.error")).to_contain_text("max_tokens")
    expect(page.locator(".turn-assistant")).to_have_count(1)
    expect(page.locator("#prompt")).to_have_value("And now a very long answer")
    expected_failure(page, 400)


def test_the_console_pages_at_desktop_and_phone_sizes(browser, live_server, console_catalog, people, org,
                                                      alice, dave):
    from billing.ledger import credit
    from billing.reconcile import reconcile

    base = live_server.url
    credit(org.pk, Decimal("0.0000009"), note="a tiny top-up", created_by=alice)
    token = people["invitation_token"]
    contexts = []
    try:
        # The owner, at desktop size.
        context, page = session_for(browser, base, alice, DESKTOP)
        contexts.append(context)
        visit(page, base, "/models/")
        expect(page.locator('tr[data-model="demo:echo"] .badge')).to_have_text("Available")
        expect(page.locator('tr[data-model="deepseek:deepseek-chat"] .badge')).to_have_text("Cooling down")
        expect(page.locator('tr[data-model="openai:gpt-4o-mini"] .badge')).to_have_text("Provider not configured")
        expect(page.locator('tr[data-model="openai:gpt-4o"] .badge')).to_have_text("Disabled")
        screenshot(page, "models")

        use_playground(page, base)
        screenshot(page, "playground")

        reconcile()  # the playground's request, booked as a worker would (see test_journey)
        visit(page, base, "/usage/")
        expect(page.locator("tfoot")).to_contain_text("Total: 5 requests")  # 4 booked and the playground's
        expect(page.locator('tr[data-request-id="req-console-2"]')).to_contain_text("nightly batch")
        screenshot(page, "usage")
        page.fill('input[name="request_id"]', "req-console-2")
        page.get_by_role("button", name="Filter", exact=True).click()
        expect(page.locator("tr[data-request-id]")).to_have_count(1)
        expect(page.locator("tfoot")).to_contain_text("Total: 1 request matching the filters")

        visit(page, base, "/audit/")
        expect(page.locator(".sentence").first).to_contain_text("Credited 0.0000009 USD")
        expect(page.get_by_text("Invited erin@example.com as member")).to_be_visible()
        expect(page.get_by_text("replaced_open_invitation")).to_have_count(0)
        screenshot(page, "audit")

        visit(page, base, "/no-such-page/", status=404)
        expect(page.get_by_role("heading", name="There is nothing here")).to_be_visible()
        screenshot(page, "not-found")

        # An admin: no Billing or Audit link, and the page behind one is a styled 403.
        context, admin = session_for(browser, base, dave, DESKTOP)
        contexts.append(context)
        visit(admin, base, "/dashboard/")
        nav = admin.locator("nav.sidenav")
        expect(nav.get_by_role("link", name="Billing")).to_have_count(0)
        expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
        visit(admin, base, "/billing/", status=403)
        expect(admin.get_by_text("This needs the owner role in Alpha Labs.")).to_be_visible()
        screenshot(admin, "forbidden")

        # The invited person, not signed up yet.
        context, guest = session_for(browser, base, None, DESKTOP)
        contexts.append(context)
        visit(guest, base, f"/invitations/{token}/")
        expect(guest.locator("[data-invitation]")).to_contain_text("alice@alpha.example invited you to Alpha Labs")
        expect(guest.locator('input[name="email"]')).to_have_value("erin@example.com")
        screenshot(guest, "invited-signup")

        # The same pages on a phone: nothing scrolls sideways.
        context, phone = session_for(browser, base, alice, PHONE)
        contexts.append(context)
        for path in ["/dashboard/", "/models/", "/usage/", "/audit/", "/members/", "/keys/", "/billing/",
                     "/quickstart/"]:
            visit(phone, base, path)
            assert_fits(phone, path)
        visit(phone, base, "/models/")
        screenshot(phone, "models-phone")
        visit(phone, base, "/usage/")
        screenshot(phone, "usage-phone")
        use_playground(phone, base)
        assert_fits(phone, "/playground/ after a long answer")
        screenshot(phone, "playground-phone")
        visit(phone, base, "/no-such-page/", status=404)
        assert_fits(phone, "the 404 page")
        context, guest_phone = session_for(browser, base, None, PHONE)
        contexts.append(context)
        visit(guest_phone, base, f"/invitations/{token}/")
        assert_fits(guest_phone, "the invited sign-up")

        errors = [e for p in (page, admin, guest, phone, guest_phone) for e in p.errors]
        assert not errors, "errors in the browser console:\n" + "\n".join(errors)
    finally:
        for context in contexts:
            context.close()
