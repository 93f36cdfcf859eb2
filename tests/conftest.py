"""Shared fixtures: a real mock upstream on loopback, a catalog pointing at it, two
organizations, keys, and the official openai SDK aimed at the live gateway."""

import openai
import pytest
from django.core.cache import cache

from console.tenancy import create_organization
from gateway.catalog import forget_routes
from gateway.catalog_loader import load_catalog
from gateway.keys import mint_api_key
from tests.upstream_mock import MockUpstream

UPSTREAM_SECRET = "sk-upstream-SECRET-never-shown-0123456789"
SCENARIOS = [
    "ok", "echo-request", "fail-500", "fail-429", "fail-400", "fail-401", "slow", "slow-stream",
    "cut-mid-stream", "bad-json", "not-an-object", "no-usage", "error-event", "long-stream", "reasoning",
]


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


@pytest.fixture(autouse=True)
def _fresh_caches():
    forget_routes()
    cache.clear()
    yield
    forget_routes()


@pytest.fixture
def catalog(db, upstream, monkeypatch):
    monkeypatch.setenv("MOCK_UPSTREAM_API_KEY", UPSTREAM_SECRET)
    load_catalog(catalog_yaml(upstream.base_url))
    upstream.reset()
    return upstream


@pytest.fixture
def org(db):
    return create_organization("Alpha Labs", "alice@alpha.example")


@pytest.fixture
def other_org(db):
    return create_organization("Beta Corp", "bob@beta.example")


@pytest.fixture
def api_key(org):
    """The secret of a fresh key of `org`."""
    _, secret = mint_api_key(org, name="test")
    return secret


@pytest.fixture
def gateway_url(live_server):
    return f"{live_server.url}/v1"


@pytest.fixture
def client(gateway_url, api_key, catalog):
    return openai.OpenAI(base_url=gateway_url, api_key=api_key, max_retries=0, timeout=20)
