"""Helpers for the browser tests: Playwright's sync API driving Debian's Chromium.

Nothing here downloads a browser (`playwright install` is never needed): the tests use the
Chromium at /usr/bin/chromium. Without it, or without the playwright package, the browser
tests skip, except under CI (CI=true), where they fail so that CI cannot pass without them.
"""

import os
from pathlib import Path

import pytest

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
