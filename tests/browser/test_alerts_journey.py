"""The Alerts page in a real browser against the live server: an owner sets the threshold
and a webhook URL, copies the signing secret shown once, sends a test event and sees it in
the delivery log; at phone size nothing scrolls sideways. No console error anywhere."""

import time

import pytest
from django.conf import settings as django_settings

from billing.models import AlertDelivery
from tests.browser.support import DESKTOP, PHONE, TIMEOUT_MS, screenshot, session_for, skip_or_fail_without_browser
from tests.console.conftest import alice  # noqa: F401  (the console's owner, as a fixture)
from tests.webhook_receiver import WebhookReceiver

skip_or_fail_without_browser()

from playwright.sync_api import expect  # noqa: E402  (only once the browser is known to be there)

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in_page(browser, base: str, user, viewport: dict):
    context, page = session_for(browser, base, user, viewport)
    context.set_default_timeout(TIMEOUT_MS)
    return context, page


def test_an_owner_sets_up_alerts_and_sends_a_test_event(browser, live_server, org, alice, settings):  # noqa: F811
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    base = live_server.url
    context, page = logged_in_page(browser, base, alice, DESKTOP)
    with WebhookReceiver() as receiver:
        try:
            page.goto(base + "/dashboard/")
            page.get_by_role("link", name="Alerts", exact=True).click()
            expect(page.get_by_role("button", name="Send test event")).to_be_disabled()
            page.fill('input[name="threshold"]', "5")
            page.fill('input[name="webhook_url"]', receiver.url)
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.locator("#new-secret")).to_contain_text("whsec_")
            page.get_by_role("button", name="Send test event").click()
            expect(page.locator(".message.success")).to_contain_text("test event is on its way")
            row = page.locator("#deliveries tbody tr").first
            expect(row).to_contain_text("test")
            expect(page.locator("#new-secret")).to_have_count(0)  # shown once
            screenshot(page, "alerts")

            page.set_viewport_size(PHONE)
            page.reload()
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"the Alerts page scrolls sideways on a phone ({width[0]} px in {width[1]})"
            row.locator("a").click()
            expect(page.locator("#delivery-payload")).to_contain_text('"type": "test"')
            assert not page.errors, page.errors
        finally:
            context.close()
            # The embedded default sends from a thread of this process: let it be done with
            # the database before the test's is flushed.
            deadline = time.monotonic() + 5
            while (not django_settings.REDIS_URL and time.monotonic() < deadline
                   and AlertDelivery.objects.filter(status="pending").exists()):
                time.sleep(0.05)
