"""Every console page, in a real browser at desktop and phone sizes: it answers 200, logs no
JavaScript or console error, and on the phone never scrolls sideways.

The list is not written here: it is every page the URL configuration routes to a console
view (`org_view`, console.pages.common), so a page added later is covered the day it lands.
A page whose URL takes a parameter needs an example below, and the test says so when one
is missing; actions (POST only, 405 on GET), redirects and downloads are left out by what
they answer.
"""

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone

from console.pages.common import NAV, SESSION_KEY
from tests.browser.support import DESKTOP, PHONE, assert_fits, screenshot, session_for, skip_or_fail_without_browser, visit

skip_or_fail_without_browser()

pytestmark = pytest.mark.django_db(transaction=True)

# Pages behind a login that are no org_view, and pages for everyone.
OTHER_PAGES = ["organization_new"]
PUBLIC_PATHS = ["/", "/accounts/login/", "/accounts/signup/"]

# Views that are no page of their own; say why.
NOT_PAGES = {
    "billing_receipt": "redirects to Stripe's receipt of a settled top-up",
}


def examples(world) -> dict:
    """URL parameters for the pages that take one, from the `people` fixture's data."""
    return {
        "key_detail": {"pk": world["key"].pk},
        "usage_detail": {"request_id": world["request_id"]},
        "alert_delivery": {"pk": world["alert_delivery"].pk},
        "responses_detail": {"response_id": world["response_id"]},
        "billing_statement": {"month": f"{timezone.now():%Y-%m}"},
        "billing_statement_csv": {"month": f"{timezone.now():%Y-%m}"},
        "billing_ledger_day": {"day": f"{timezone.now():%Y-%m-%d}"},
    }


def placeholder(converter) -> object:
    return 999_999_999 if converter.regex == "[0-9]+" else "x"


def console_patterns() -> list[URLPattern]:
    return [p for p in get_resolver().url_patterns
            if isinstance(p, URLPattern) and p.name and hasattr(p.callback, "required_role")]


def console_pages(user, org, world) -> list[str]:
    """The paths of every console page, found by asking each console view with a GET as
    `user`, who must be allowed every page (an owner)."""
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = org.pk
    session.save()
    known = examples(world)
    pages, missing = [], []
    for pattern in console_patterns():
        params = pattern.pattern.converters
        kwargs = known.get(pattern.name) or {name: placeholder(c) for name, c in params.items()}
        path = reverse(pattern.name, kwargs=kwargs)
        response = client.get(path)
        if response.status_code == 405 or pattern.name in NOT_PAGES:
            continue  # an action, or no page of its own
        if response.status_code in (301, 302) and not response["Location"].startswith("/accounts/"):
            continue  # a short way to another page (the current statement), which is visited itself
        if params and pattern.name not in known:
            missing.append(pattern.name)
            continue
        assert response.status_code == 200, f"GET {path} ({pattern.name}) answered {response.status_code}"
        if response["Content-Type"].startswith("text/html"):
            pages.append(path)
    assert not missing, f"console pages with URL parameters and no example in test_every_page.examples: {missing}"
    pages += [reverse(name) for name in OTHER_PAGES]
    nav_paths = {reverse(name) for name, _, _ in NAV}
    assert nav_paths <= set(pages), f"navigation links that are no page here: {nav_paths - set(pages)}"
    return pages


def test_every_console_page_at_desktop_and_phone_sizes(browser, live_server, console_catalog, people, org, alice):
    base = live_server.url
    pages = console_pages(alice, org, people)
    assert len(pages) >= 15, pages  # the discovery found the console, not an empty list
    contexts = []
    try:
        for viewport in (DESKTOP, PHONE):
            context, page = session_for(browser, base, alice, viewport)
            contexts.append(context)
            for path in pages:
                visit(page, base, path)
                if viewport is PHONE:
                    assert_fits(page, f"{path} on a phone")
            context, guest = session_for(browser, base, None, viewport)
            contexts.append(context)
            for path in PUBLIC_PATHS:
                visit(guest, base, path)
                if viewport is PHONE:
                    assert_fits(guest, f"{path} on a phone")
            errors = page.errors + guest.errors
            assert not errors, "errors in the browser console:\n" + "\n".join(errors)
        # The key with every limit, for the README.
        context, page = session_for(browser, base, alice, DESKTOP)
        contexts.append(context)
        visit(page, base, "/keys/")
        screenshot(page, "keys-limits")
        screenshot(page, "keys-phone", viewport=PHONE)
        visit(page, base, reverse("key_detail", kwargs={"pk": people["key"].pk}))
        screenshot(page, "key-detail")
    finally:
        for context in contexts:
            context.close()
