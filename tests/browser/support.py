"""Helpers for the browser tests: Playwright's sync API driving Debian's Chromium.

Nothing here downloads a browser (`playwright install` is never needed): the tests use the
Chromium at /usr/bin/chromium. Without it, or without the playwright package, the browser
tests skip, except under CI (CI=true), where they fail so that CI cannot pass without them.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT_MS = 15_000


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright cannot be imported ({exc}); install the test extras"
    return None


def skip_or_fail_without_browser() -> None:
    """Skip the calling test module cleanly, or fail it loudly under CI."""
    reason = browser_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def screenshot(page, name: str, *, viewport: dict | None = None) -> None:
    """docs/screenshots/<name>.png, full page, only when SCREENSHOTS=1 (CI keeps its
    checkout clean)."""
    if os.environ.get("SCREENSHOTS") != "1":
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    if viewport is not None:
        # Reload, so that the page lays itself out for this size from the start (a chart
        # drawn at desktop width keeps its canvas otherwise).
        page.set_viewport_size(viewport)
        page.reload()
    try:
        page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True, animations="disabled")
    finally:
        if viewport is not None:
            page.set_viewport_size(DESKTOP)
            page.reload()


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
