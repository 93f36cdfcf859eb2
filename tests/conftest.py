"""Shared fixtures: a real mock upstream on loopback, a catalog pointing at it, two
organizations, keys, and the official openai SDK aimed at the live gateway."""

import os
import uuid
from decimal import Decimal

import openai
import pytest
from django.core.cache import cache
from django.core.servers.basehttp import WSGIServer

from billing import live
from billing.ledger import credit

from console.tenancy.actions import create_organization
from gateway.routing.catalog import forget_routes
from gateway.routing.catalog_loader import load_catalog
from gateway.upstream.redaction import forget_configured_secrets
from gateway.routing.resilience import reset_cooldowns
from gateway.keys.api_keys import forget_remembered_keys, mint_api_key
from tests.live_threads import wait_until_idle
from tests.anthropic_mock import AnthropicMock
from tests.gemini_mock import GeminiMock
from tests.upstream_mock import MockUpstream

# Django's live server listens with a backlog of 10 (WSGIServer.request_queue_size); the
# concurrency tests open 50 connections at once, which overflowed it now and then (a
# reset the SDK reports as a connection error). Production servers listen with 2048.
WSGIServer.request_queue_size = 1024

UPSTREAM_SECRET = "sk-upstream-SECRET-never-shown-0123456789"
SCENARIOS = [
    "ok", "echo-request", "fail-500", "fail-429", "fail-400", "fail-401", "slow", "slow-stream",
    "cut-mid-stream", "bad-json", "not-an-object", "no-usage", "error-event", "long-stream", "reasoning",
    "honours-max-tokens", "overruns", "echoes-key", "fail-400-poison", "huge-usage",
]


# Tests that start the Procfile's processes and load them with hundreds of connections:
# two of them at once on CI's 2 cores starve each other into timeouts, so xdist
# (--dist loadgroup, see the Makefile) runs them one after another on one worker.
LOAD_TEST_MODULES = {"test_worker_model", "test_outages", "test_rate_limits", "test_web_server",
                     "test_booking_poison_worker", "test_reconcile_worker", "test_settlement_outbox",
                     "test_alerts_worker", "test_redis_cluster", "test_web_hosts"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in LOAD_TEST_MODULES:
            item.add_marker(pytest.mark.xdist_group("load"))


@pytest.fixture(scope="session")
def upstream():
    with MockUpstream() as mock:
        yield mock


def catalog_yaml(upstream_url: str, timeout: float = 2.0) -> str:
    models = "\n".join(
        f'      {name}: {{input_per_mtok: "0.27", output_per_mtok: "1.10", max_output_tokens: 4096}}'
        for name in SCENARIOS
    )
    return f"""
providers:
  mock:
    protocol: openai
    base_url: {upstream_url}
    api_key_env: MOCK_UPSTREAM_API_KEY
    timeout_seconds: {timeout}
    models:
{models}
  demo:
    protocol: mock
    models:
      echo: {{input_per_mtok: "0.10", output_per_mtok: "0.20"}}
"""


TEST_REDIS_PREFIX = f"mgtest{os.environ.get('PYTEST_XDIST_WORKER', '')}"


def clear_billing_store():
    from django.conf import settings

    reset_cooldowns()
    live.reset()  # the embedded default's in-process Redis goes with it
    if settings.REDIS_URL:
        client = live.client()
        keys = list(client.scan_iter(f"{TEST_REDIS_PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
    live.reset()


@pytest.fixture(autouse=True)
def _settle_live_server(request):
    # A stream settles after its last byte: let the server finish before the database goes.
    yield
    if "live_server" in request.fixturenames:
        wait_until_idle()


@pytest.fixture(autouse=True)
def _cache_of_this_test():
    # The shared Redis cache outlives a test: allauth's rate limits (one confirmation mail
    # per address every few minutes, signups per minute from one IP) would otherwise refuse
    # a test that signs up an address another test, or another run, signed up just before.
    # Threads made later (the live server's) build their cache from settings; this one has
    # its own.
    from django.conf import settings
    from django.core.cache import caches

    if settings.REDIS_URL:
        prefix = f"mgtest-{uuid.uuid4().hex[:12]}"
        settings.CACHES["default"]["KEY_PREFIX"] = prefix
        caches["default"].key_prefix = prefix


@pytest.fixture(autouse=True)
def _no_signup_credit(settings):
    # The embedded default grants new sign-ups a dollar; tests count money from zero.
    settings.SIGNUP_CREDIT_USD = "0"


@pytest.fixture(autouse=True)
def _fresh_caches(settings):
    # Database ids restart between tests, so no live state may outlive its test.
    settings.BILLING_REDIS_PREFIX = TEST_REDIS_PREFIX
    forget_routes()
    forget_remembered_keys()
    forget_configured_secrets()
    if not settings.REDIS_URL:
        # Never FLUSHDB a shared Redis: parallel test workers keep their billing state there.
        cache.clear()
    clear_billing_store()
    yield
    forget_routes()
    clear_billing_store()


@pytest.fixture
def catalog(db, upstream, monkeypatch):
    monkeypatch.setenv("MOCK_UPSTREAM_API_KEY", UPSTREAM_SECRET)
    load_catalog(catalog_yaml(upstream.base_url))
    upstream.reset()
    return upstream


@pytest.fixture
def org(db):
    """An organization with 100 USD of prepaid credit."""
    org = create_organization("Alpha Labs", "alice@alpha.example")
    credit(org.pk, Decimal("100"), note="test credit")
    return org


@pytest.fixture
def other_org(db):
    return create_organization("Beta Corp", "charlie@beta.example")


@pytest.fixture
def api_key(org):
    """The secret of a fresh key of `org`."""
    _, secret = mint_api_key(org, name="test")
    return secret


@pytest.fixture
def gateway_url(live_server):
    return f"{live_server.url}/v1"


@pytest.fixture(scope="session")
def anthropic_upstream():
    """The Anthropic-protocol mock (tests/anthropic_mock.py), one per test process; each
    test's catalog fixture clears what it recorded."""
    with AnthropicMock() as mock:
        yield mock


@pytest.fixture(scope="session")
def gemini_upstream():
    """The Gemini-protocol mock (tests/gemini_mock.py), one per test process."""
    with GeminiMock() as mock:
        yield mock


@pytest.fixture
def client(gateway_url, api_key, catalog):
    return openai.OpenAI(base_url=gateway_url, api_key=api_key, max_retries=0, timeout=20)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    from django.conf import settings

    db = settings.DATABASES["default"]
    # Live-server threads must not keep connections open past a test (the test database
    # could not be dropped), and a test database needs no durable commits.
    db["CONN_MAX_AGE"] = 0
    if db["ENGINE"] == "django.db.backends.postgresql":
        db.setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"
    else:
        # A file, not shared-cache memory: live-server threads then wait for SQLite's
        # locks the way production processes do instead of failing at once.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        db["TEST"]["NAME"] = str(settings.VAR_DIR / f"test-{os.getpid()}{worker}.sqlite3")
