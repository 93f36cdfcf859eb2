"""A new customer's first session, in a real browser against the live server: sign up,
confirm the email, create an API key, call the gateway with the official SDK, find the
request on the usage page, revoke the key, and see the SDK refused.

With SCREENSHOTS=1 it also writes docs/screenshots/<page>.png of the pages it visits
(test_console_pages.py takes the rest):
    SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser -p no:xdist
"""

import re
import secrets
import time
from decimal import Decimal

import openai
import pytest

from tests.browser.support import PHONE, screenshot, skip_or_fail_without_browser

skip_or_fail_without_browser()

from playwright.sync_api import expect  # noqa: E402  (only once the browser is known to be there)

# A fresh address per run: allauth allows one confirmation email per address every few
# minutes, and under REDIS_URL its counters outlive the test.
EMAIL = f"journey@{secrets.token_hex(3)}.example.com"
PASSWORD = "Tangerine-kite-4417"
PROMPT = "Hello from the browser journey"
CONFIRM_PATH = re.compile(r"/accounts/confirm-email/[^/\s]+/")
NUMBER = re.compile(r"\d+(?:\.\d+)?")

pytestmark = pytest.mark.django_db(transaction=True)


def visit(page, base: str, path: str):
    response = page.goto(base + path)
    assert response is not None and response.ok, f"GET {path} answered {response and response.status}"
    return response


def sign_up_and_confirm(page, base: str, mailoutbox) -> None:
    visit(page, base, "/accounts/signup/")
    screenshot(page, "signup")
    page.fill('input[name="email"]', EMAIL)
    page.fill('input[name="password1"]', PASSWORD)
    page.fill('input[name="password2"]', PASSWORD)
    page.locator('form:has(input[name="password2"]) [type="submit"]').click()
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))  # "verify your email address"

    # Verification is mandatory; the link comes by email (Django's outbox under pytest).
    deadline = time.monotonic() + 10
    while not [m for m in mailoutbox if EMAIL in m.to] and time.monotonic() < deadline:
        time.sleep(0.05)
    messages = [m for m in mailoutbox if EMAIL in m.to]
    assert len(messages) == 1, f"expected one verification email to {EMAIL}, got {len(messages)}"
    link = CONFIRM_PATH.search(messages[0].body)
    assert link, f"no /accounts/confirm-email/<key>/ link in the email:\n{messages[0].body}"

    visit(page, base, link.group(0))
    page.get_by_role("button", name=re.compile(r"confirm", re.I)).click()
    page.wait_for_url(f"{base}/dashboard/")  # confirming logs the new user in
    expect(page.get_by_text(EMAIL).first).to_be_visible()


def personal_organization():
    from console.tenancy.models import Membership

    membership = Membership.objects.select_related("organization").get(user__email=EMAIL)
    assert membership.role == Membership.Role.OWNER
    return membership.organization


def create_key(page, base: str, name: str) -> str:
    visit(page, base, "/keys/")
    form = page.locator('form:has(input[name="name"])')
    form.locator('input[name="name"]').fill(name)
    form.get_by_role("button", name="Create key", exact=True).click()
    secret = page.locator("#new-secret")
    expect(secret).to_be_visible()
    value = secret.inner_text().strip()
    assert value.startswith("sk-"), f"#new-secret shows {value!r}"
    screenshot(page, "key-created")  # a throwaway key of the test database
    visit(page, base, "/keys/")
    row = page.locator("[data-key-prefix]").filter(has_text=name)
    expect(row).to_have_count(1)
    assert value.startswith(row.get_attribute("data-key-prefix")), "the key's row shows another prefix"
    return value


def reconcile_usage() -> None:
    # With REDIS_URL (CI) usage is booked by a Celery worker, which a test has none of:
    # run the worker's code here. The embedded default has booked it in-process already.
    from billing.reconcile import reconcile

    reconcile()


def find_usage_row(page, base: str, request_id: str, timeout: float = 10.0):
    """The usage page's row for this request, reloading while the usage is booked."""
    deadline = time.monotonic() + timeout
    while True:
        visit(page, base, "/usage/")
        row = page.locator(f'tr[data-request-id="{request_id}"]')
        if row.count() or time.monotonic() > deadline:
            break
        reconcile_usage()
        time.sleep(0.3)
    expect(row).to_have_count(1)
    return row


def displayed_amount(text: str) -> Decimal:
    found = NUMBER.search(text.replace(",", ""))
    assert found, f"no amount in {text!r}"
    return Decimal(found.group(0))


def revoke_key(page, base: str, name: str) -> None:
    visit(page, base, "/keys/")
    row = page.locator("[data-key-prefix]").filter(has_text=name)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke", exact=True).click()
    page.wait_for_load_state()


def use_playground(page, base: str) -> None:
    visit(page, base, "/playground/")
    models = page.locator("select").filter(has=page.locator('option[value="demo:echo"]'))
    echo = models.count() > 0
    if echo:
        models.first.select_option("demo:echo")
    page.fill("#prompt", PROMPT)
    page.get_by_role("button", name="Send", exact=True).click()
    answer = page.locator("#answer")
    if echo:
        expect(answer).to_contain_text(PROMPT)  # demo:echo answers with the last user message
    else:
        expect(answer).not_to_be_empty()
    page.wait_for_load_state("networkidle")


def refused(client) -> openai.AuthenticationError:
    """The AuthenticationError a revoked key gets (keys are cached for a few seconds; the
    revocation clears the cache, but allow the cache's lifetime all the same)."""
    deadline = time.monotonic() + 6
    while True:
        try:
            client.chat.completions.create(model="demo:echo", messages=[{"role": "user", "content": "again"}])
        except openai.AuthenticationError as exc:
            return exc
        assert time.monotonic() < deadline, "the revoked key still works after 6 s"
        time.sleep(0.25)


def test_new_customer_journey(page, live_server, catalog, mailoutbox):
    from billing.ledger import credit

    base = live_server.url
    visit(page, base, "/")
    screenshot(page, "landing")

    sign_up_and_confirm(page, base, mailoutbox)
    org = personal_organization()
    credit(org.pk, Decimal("10"), note="browser journey")

    key = create_key(page, base, "journey")
    screenshot(page, "keys")

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=20)
    raw = client.chat.completions.with_raw_response.create(
        model="demo:echo", messages=[{"role": "user", "content": "Hello, gateway!"}]
    )
    completion = raw.parse()
    assert completion.model == "demo:echo"
    assert "Hello, gateway!" in completion.choices[0].message.content
    request_id = raw.headers["x-request-id"]
    cost = Decimal(raw.headers["x-mixgateway-cost-usd"])
    assert cost > 0

    row = find_usage_row(page, base, request_id)
    shown = row.locator("td.num.cost")
    expect(shown).to_have_count(1)
    shown_cost = displayed_amount(shown.inner_text())
    # The page may round for display, but never to another amount.
    assert cost.quantize(shown_cost) == shown_cost, f"usage shows {shown.inner_text()!r}, charged {cost}"

    visit(page, base, "/dashboard/")
    screenshot(page, "dashboard")
    screenshot(page, "dashboard-phone", viewport=PHONE)
    # The models, usage and playground screenshots come from test_console_pages, with more to show.
    visit(page, base, "/quickstart/")
    screenshot(page, "quickstart")
    use_playground(page, base)
    for name in ("billing", "members"):
        visit(page, base, f"/{name}/")
        screenshot(page, name)
    from django.urls import reverse

    visit(page, base, reverse("billing_statement_current"))
    screenshot(page, "statement")

    revoke_key(page, base, "journey")
    row = page.locator("[data-key-prefix]").filter(has_text="journey")
    expect(row.get_by_role("button", name="Revoke", exact=True)).to_have_count(0)
    screenshot(page, "keys-revoked")

    error = refused(client)
    assert error.status_code == 401
    assert error.code == "invalid_api_key"
