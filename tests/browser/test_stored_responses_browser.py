"""The stored responses page in a real browser: a response made through the live gateway
is listed, shows its items, and an admin deletes it through the confirmation dialog."""

import openai
import pytest
from django.conf import settings as django_settings
from django.test import Client

from gateway.routing.catalog_loader import load_catalog
from tests.browser.support import screenshot, skip_or_fail_without_browser
from tests.console.conftest import alice, dave  # noqa: F401  (the console's people, as fixtures)

skip_or_fail_without_browser()

from playwright.sync_api import expect  # noqa: E402  (only once the browser is known to be there)

pytestmark = pytest.mark.django_db(transaction=True)
DEMO = 'providers:\n  demo:\n    protocol: mock\n    models:\n      echo: {input_per_mtok: "0.10", output_per_mtok: "0.20"}\n'


def test_an_admin_reads_and_deletes_a_stored_response(page, live_server, org, dave, api_key):
    load_catalog(DEMO)
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=api_key, max_retries=0)
    made = client.responses.create(model="demo:echo", instructions="Echo it.", input="Tell me about <tigers>")
    browser_session = Client()
    browser_session.force_login(dave)
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": browser_session.cookies[django_settings.SESSION_COOKIE_NAME].value}])
    page.goto(f"{live_server.url}/dashboard/")
    page.get_by_role("link", name="Stored responses").click()
    page.get_by_role("link", name=made.id).click()
    expect(page.locator("[data-item=input]")).to_contain_text("Tell me about <tigers>")
    expect(page.locator("[data-item=output]")).to_contain_text("Tell me about <tigers>")
    expect(page.get_by_text("Echo it.")).to_be_visible()
    screenshot(page, "stored-response")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"Deleted stored response {made.id}.")).to_be_visible()
    expect(page.locator(f"[data-response-id='{made.id}']")).to_have_count(0)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
