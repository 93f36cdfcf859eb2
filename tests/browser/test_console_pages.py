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

from tests.browser.support import (
    DESKTOP, PHONE, assert_fits, expected_failure, screenshot, session_for, skip_or_fail_without_browser, visit,
)

skip_or_fail_without_browser()

from playwright.sync_api import expect  # noqa: E402  (only once the browser is known to be there)

pytestmark = pytest.mark.django_db(transaction=True)

LONG_WORD = "x" * 400  # one unbroken word, far wider than any card


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
        # Every page on a phone: test_every_page.py.
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
