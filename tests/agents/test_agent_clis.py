"""The real coding agents answer a prompt through the gateway and are billed like any
request: Claude Code on `POST /v1/messages`, the Codex CLI on `POST /v1/responses`, each
with its bare model name mapped by a catalog alias to an OpenAI-protocol model on the mock
upstream, so every hop is translated. Their telemetry, error reporting and update checks
are off (the documented switches, docs/agents.md), and each runs in a home of its own."""

import os
import subprocess
import time
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from billing.reconcile import reconcile
from gateway.routing.catalog_loader import load_catalog
from tests.billing_helpers import OK_COST, balance
from tests.conftest import UPSTREAM_SECRET, catalog_yaml

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "Say hello"
ANSWER = "Hello from upstream"  # the mock's "ok" scenario, 8 prompt and 3 completion tokens
RUN_TIMEOUT = 90  # seconds: a hung agent fails the test instead of the suite

# Claude Code's and Codex's own switches for everything but the model call.
CLAUDE_QUIET = {"DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}
# Extended thinking is Anthropic's alone: toward another protocol it is a 400, so Claude Code
# on a non-Anthropic model sends `thinking: {"type": "disabled"}` (docs/agents.md).
CLAUDE_ON_OTHER_MODELS = {"MAX_THINKING_TOKENS": "0"}
CODEX_CONFIG = """\
model = "gpt-5"
model_provider = "mixgateway"
check_for_update_on_startup = false
web_search = "disabled"

[model_providers.mixgateway]
name = "MixGateway"
base_url = "{base_url}"
env_key = "MIXGATEWAY_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[features]
goals = false
plugins = false
apps = false
remote_plugin = false
image_generation = false

[agents]
enabled = false

[analytics]
enabled = false

[feedback]
enabled = false
"""


@pytest.fixture
def agent_catalog(db, upstream, monkeypatch):
    """The test catalog plus the agents' bare model names as aliases of mock:ok."""
    monkeypatch.setenv("MOCK_UPSTREAM_API_KEY", UPSTREAM_SECRET)
    load_catalog(catalog_yaml(upstream.base_url) + "aliases:\n  claude-sonnet-4-5: mock:ok\n  gpt-5: mock:ok\n")
    upstream.reset()
    return upstream


def run_agent(command: list[str], env: dict, cwd) -> str:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "NO_COLOR": "1"}
    done = subprocess.run(command, env={**base, **env}, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def the_one_booked_request(org) -> UsageRecord:
    """The organization's single usage record, once the stream that made it has settled."""
    deadline = time.monotonic() + 10
    while True:
        reconcile()
        records = list(UsageRecord.objects.filter(organization=org))
        if records or time.monotonic() > deadline:
            assert len(records) == 1, f"expected one booked request, found {len(records)}"
            return records[0]
        time.sleep(0.05)


def assert_billed_like_any_request(org):
    record = the_one_booked_request(org)  # a stream: both agents always stream
    assert (record.model, record.status, record.stream) == ("mock:ok", "completed", True)
    assert (record.prompt_tokens, record.completion_tokens, record.basis) == (8, 3, "provider")
    assert record.cost == OK_COST
    assert record.ledger_entry.amount == -OK_COST
    assert record.ledger_entry.reference == f"usage:{record.request_id}"
    assert balance(org) == Decimal("100") - OK_COST


def test_claude_code_answers_through_messages_and_is_billed(agent_binaries, agent_catalog, live_server,
                                                             api_key, org, tmp_path):
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / ".claude"),
           "ANTHROPIC_BASE_URL": live_server.url, "ANTHROPIC_AUTH_TOKEN": api_key,
           "ANTHROPIC_MODEL": "claude-sonnet-4-5", **CLAUDE_QUIET, **CLAUDE_ON_OTHER_MODELS}
    out = run_agent([str(agent_binaries["claude"]), "-p", PROMPT], env, tmp_path)
    assert out.strip() == ANSWER
    sent = agent_catalog.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "ok"
    # Claude Code's system blocks, prompt and tool set arrive in OpenAI's shape.
    messages = sent["body"]["messages"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert PROMPT in str(messages[-1]["content"])
    tools = {tool["function"]["name"] for tool in sent["body"]["tools"]}
    assert {"Bash", "Read", "Edit"} <= tools
    assert_billed_like_any_request(org)


def test_codex_answers_through_responses_and_is_billed(agent_binaries, agent_catalog, live_server,
                                                       api_key, org, tmp_path):
    codex_home = tmp_path / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base_url=f"{live_server.url}/v1"))
    work = tmp_path / "work"
    work.mkdir()
    env = {"HOME": str(tmp_path), "CODEX_HOME": str(codex_home), "MIXGATEWAY_API_KEY": api_key}
    out = run_agent([str(agent_binaries["codex"]), "exec", "--skip-git-repo-check", PROMPT], env, work)
    assert ANSWER in out
    sent = agent_catalog.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "ok"
    # Codex's developer messages are system instructions; its function tools stay tools.
    roles = [message["role"] for message in sent["body"]["messages"]]
    assert roles[0] in ("system", "developer") and roles[-1] == "user"
    assert PROMPT in str(sent["body"]["messages"][-1]["content"])
    tools = {tool["function"]["name"] for tool in sent["body"]["tools"]}
    assert "exec_command" in tools
    assert_billed_like_any_request(org)
