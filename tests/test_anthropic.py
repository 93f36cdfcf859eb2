"""The openai SDK through the gateway to an Anthropic Messages upstream."""

import json
from decimal import Decimal

import openai
import pytest

from gateway.routing.catalog_loader import load_catalog
from tests.billing_helpers import booked
from tests.conftest import catalog_yaml

pytestmark = pytest.mark.django_db(transaction=True)
ANTHROPIC_SECRET = "sk-ant-upstream-SECRET-0123456789"
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def claude(catalog, anthropic_upstream, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", ANTHROPIC_SECRET)
    models = "\n".join(
        f'      {m}: {{input_per_mtok: "3", output_per_mtok: "15", cached_input_per_mtok: "0.3", max_output_tokens: 1024}}'
        for m in ("claude-ok", "claude-tools", "claude-cached", "claude-overloaded", "claude-bad-request",
                  "claude-error-event")
    )
    load_catalog(catalog_yaml(catalog.base_url) + f"""  claude:
    protocol: anthropic
    base_url: {anthropic_upstream.base_url}
    api_key_env: ANTHROPIC_TEST_KEY
    models:
{models}
""")
    anthropic_upstream.requests.clear()
    return anthropic_upstream


def test_it_translates_a_chat_request_and_its_answer(client, claude):
    answer = client.chat.completions.create(model="claude:claude-ok", messages=HELLO, temperature=0.2, stop="END")
    assert answer.choices[0].message.content == "Hello from Claude"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "claude:claude-ok"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 3)
    sent = claude.requests[-1]
    assert sent["headers"]["x-api-key"] == ANTHROPIC_SECRET and sent["headers"]["anthropic-version"]
    assert sent["body"]["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert sent["body"]["max_tokens"] == 1024  # the catalog's cap when the caller sets none
    assert sent["body"]["stop_sequences"] == ["END"] and sent["body"]["temperature"] == 0.2


def test_it_streams_with_a_final_usage_chunk(client, claude):
    chunks = list(client.chat.completions.create(model="claude:claude-ok", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Claude"
    assert chunks[-1].usage.prompt_tokens == 12 and chunks[-1].usage.completion_tokens == 3
    assert chunks[-1].usage.model_extra["cost"] == pytest.approx((12 * 3 + 3 * 15) / 1e6)


def test_it_translates_tools_both_ways(client, claude):
    answer = client.chat.completions.create(model="claude:claude-tools", messages=HELLO, tools=TOOLS,
                                            tool_choice="required")
    call = answer.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_1", "get_weather",
                                                                                  {"city": "Paris"})
    assert answer.choices[0].finish_reason == "tool_calls"
    sent = claude.requests[-1]["body"]
    assert sent["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}
    assert sent["tool_choice"] == {"type": "any"}
    # The tool's result goes back as a tool_result block in a user turn.
    follow_up = HELLO + [answer.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C, sunny"}]
    client.chat.completions.create(model="claude:claude-ok", messages=follow_up, tools=TOOLS)
    messages = claude.requests[-1]["body"]["messages"]
    assert messages[1]["content"][-1] == {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                          "input": {"city": "Paris"}}
    assert messages[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                        "content": "18 C, sunny"}]}


def test_tool_call_deltas_stream(client, claude):
    chunks = list(client.chat.completions.create(model="claude:claude-tools", messages=HELLO, tools=TOOLS,
                                                 stream=True))
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0].id == "toolu_1" and calls[0].function.name == "get_weather"
    assert json.loads("".join(c.function.arguments or "" for c in calls)) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_images_become_image_blocks(client, claude):
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]
    client.chat.completions.create(model="claude:claude-ok", messages=[{"role": "user", "content": content}])
    blocks = claude.requests[-1]["body"]["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": "iVBORw0KGgo="}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_cached_prompt_tokens_are_priced_at_the_cached_price(client, claude):
    raw = client.chat.completions.with_raw_response.create(model="claude:claude-cached", messages=HELLO)
    answer = raw.parse()
    assert answer.usage.prompt_tokens == 122 and answer.usage.prompt_tokens_details.cached_tokens == 100
    record = booked(raw.headers["x-request-id"])
    assert record.cost == (22 * Decimal("3") + 100 * Decimal("0.3") + 3 * Decimal("15")) / 1_000_000


def test_anthropic_errors_arrive_in_our_envelope(client, claude):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="claude:claude-bad-request", messages=HELLO)
    assert err.value.code == "invalid_request" and "max_tokens" in err.value.body["message"]
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="claude:claude-overloaded", messages=HELLO)
    assert err.value.status_code == 502 and err.value.code == "upstream_error"
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="claude:claude-error-event", messages=HELLO, stream=True))


@pytest.mark.parametrize("extra, param", [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"seed": 7}, "seed"),
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"reasoning_effort": "high"}, "reasoning_effort"),
])
def test_what_anthropic_cannot_express_is_a_400_not_dropped(client, claude, extra, param):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="claude:claude-ok", messages=HELLO, extra_body=extra)
    assert (refused.value.code, refused.value.param) == ("unsupported_parameter", param)
    assert not claude.requests  # refused before any upstream call, so not charged


def test_hints_pass_quietly_and_parallel_tool_calls_false_is_said_in_anthropic_terms(client, claude):
    client.chat.completions.create(model="claude:claude-tools", messages=HELLO, tools=TOOLS,
                                   parallel_tool_calls=False, n=1, extra_body={"prompt_cache_key": "thread-1"})
    sent = claude.requests[-1]["body"]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "prompt_cache_key" not in sent and "n" not in sent
