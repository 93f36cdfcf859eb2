"""Fixtures for the /v1/messages tests: every upstream protocol on loopback (the OpenAI
mock, the Anthropic mock, the Gemini mock, and the built-in mock protocol) in one catalog,
and the official anthropic SDK aimed at the live gateway."""

import anthropic
import pytest

from gateway.routing.catalog_loader import load_catalog
from tests.conftest import catalog_yaml
from tests.gemini_mock import API_KEY as GEMINI_KEY

ANTHROPIC_SECRET = "sk-ant-upstream-SECRET-0123456789"
CLAUDE_MODELS = ("claude-ok", "claude-tools", "claude-cached", "claude-overloaded", "claude-bad-request",
                 "claude-error-event", "claude-cut", "claude-slow", "claude-server-error")
GEMINI_MODELS = ("gemini-ok", "gemini-tools", "gemini-bad-request", "gemini-server-error", "gemini-cut",
                 "gemini-slow")
CLAUDE_PRICES = 'input_per_mtok: "3", output_per_mtok: "15", cached_input_per_mtok: "0.3"'
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def messages_catalog(openai_url: str, anthropic_url: str, gemini_url: str) -> str:
    claude = "\n".join(f"      {m}: {{{CLAUDE_PRICES}, cache_write_per_mtok: \"3.75\", max_output_tokens: 1024}}"
                       for m in CLAUDE_MODELS)
    gemini = "\n".join(f'      {m}: {{input_per_mtok: "0.30", output_per_mtok: "2.50", max_output_tokens: 1024}}'
                       for m in GEMINI_MODELS)
    return catalog_yaml(openai_url) + f"""      plain-claude: {{upstream_model: claude-cached, {CLAUDE_PRICES}}}
  claude:
    protocol: anthropic
    base_url: {anthropic_url}
    api_key_env: ANTHROPIC_TEST_KEY
    timeout_seconds: 1
    models:
{claude}
      claude-no-write-price: {{upstream_model: claude-cached, {CLAUDE_PRICES}}}
  google:
    protocol: gemini
    base_url: {gemini_url}
    api_key_env: GEMINI_TEST_KEY
    timeout_seconds: 1
    models:
{gemini}
"""


@pytest.fixture
def upstreams(catalog, anthropic_upstream, gemini_upstream, monkeypatch):
    """The catalog with every protocol; returns (openai mock, anthropic mock, gemini mock)."""
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", ANTHROPIC_SECRET)
    monkeypatch.setenv("GEMINI_TEST_KEY", GEMINI_KEY)
    load_catalog(messages_catalog(catalog.base_url, anthropic_upstream.base_url, gemini_upstream.base_url))
    anthropic_upstream.requests.clear()
    gemini_upstream.requests.clear()
    return catalog, anthropic_upstream, gemini_upstream


def anthropic_sdk(live_server, api_key: str, style: str = "api_key", **options) -> anthropic.Anthropic:
    """The SDK as a caller configures it: api_key (whatever header this SDK version sends
    it in), auth_token (Authorization: Bearer), or x-api-key (Claude Code's header)."""
    credentials = {"api_key": {"api_key": api_key}, "auth_token": {"auth_token": api_key},
                   "x-api-key": {"auth_token": None, "default_headers": {"x-api-key": api_key}}}[style]
    return anthropic.Anthropic(base_url=live_server.url, max_retries=0, timeout=20, **credentials, **options)


@pytest.fixture
def claude_sdk(live_server, api_key, upstreams):
    return anthropic_sdk(live_server, api_key)


def recording_sdk(live_server, api_key: str) -> tuple[anthropic.Anthropic, list]:
    """An SDK client that keeps every request it sends, bytes included."""
    sent = []
    http_client = anthropic.DefaultHttpxClient(event_hooks={"request": [sent.append]})
    return anthropic_sdk(live_server, api_key, http_client=http_client), sent
