"""Fixtures for the browser tests: one headless Chromium per module, a fresh context per test."""

import os

import pytest

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, DESKTOP, TIMEOUT_MS, skip_or_fail_without_browser


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
