"""Shared by the tests of /v1/responses: one catalog with a model on each upstream protocol
(the OpenAI mock, the Anthropic mock, the Gemini mock, the built-in mock) and readers of a
raw Responses event stream."""

import json

import pytest

from gateway.routing.catalog_loader import load_catalog
from tests.conftest import catalog_yaml
from tests.gemini_mock import API_KEY as GEMINI_KEY

ANTHROPIC_SECRET = "sk-ant-upstream-SECRET-0123456789"
CLAUDE = ("claude-ok", "claude-tools", "claude-error-event", "claude-overloaded", "claude-bad-request")
GEMINI = ("gemini-ok", "gemini-tools", "gemini-max-tokens", "gemini-cut", "gemini-server-error")
# One plain model per protocol, its answer's text and usage as its mock reports it.
PLAIN = {
    "openai": ("mock:ok", "Hello from upstream", (8, 3)),
    "anthropic": ("claude:claude-ok", "Hello from Claude", (12, 3)),
    "gemini": ("google:gemini-ok", "Hello from Gemini", (12, 3)),
    "mock": ("demo:echo", "Say hello", None),  # counted by the gateway itself
}


@pytest.fixture
def upstreams(catalog, anthropic_upstream, gemini_upstream, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", ANTHROPIC_SECRET)
    monkeypatch.setenv("GEMINI_TEST_KEY", GEMINI_KEY)
    claude = "\n".join(f'      {m}: {{input_per_mtok: "3", output_per_mtok: "15", max_output_tokens: 1024}}'
                       for m in CLAUDE)
    gemini = "\n".join(f'      {m}: {{input_per_mtok: "0.30", output_per_mtok: "2.50", max_output_tokens: 1024}}'
                       for m in GEMINI)
    load_catalog(catalog_yaml(catalog.base_url) + f"""  claude:
    protocol: anthropic
    base_url: {anthropic_upstream.base_url}
    api_key_env: ANTHROPIC_TEST_KEY
    models:
{claude}
  google:
    protocol: gemini
    base_url: {gemini_upstream.base_url}
    api_key_env: GEMINI_TEST_KEY
    timeout_seconds: 1
    models:
{gemini}
""")
    anthropic_upstream.requests.clear()
    gemini_upstream.requests.clear()
    return {"openai": catalog, "anthropic": anthropic_upstream, "gemini": gemini_upstream}


def sse_events(raw: bytes) -> list[dict]:
    """The `data` of each event of a Responses stream, checked against its `event:` line."""
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert lines.get("event") == data["type"], block
        events.append(data)
    return events
