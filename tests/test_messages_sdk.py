"""POST /v1/messages through the official anthropic SDK against the live gateway, to every
upstream protocol: Anthropic (passthrough), OpenAI, Gemini (translated) and the built-in
mock; whole and streamed, both auth styles, tools both ways."""

import json
from decimal import Decimal

import pytest

from tests.billing_helpers import booked
from tests.messages_support import (ANTHROPIC_SECRET, HELLO, WEATHER_TOOL, anthropic_sdk, claude_sdk,  # noqa: F401
                                    recording_sdk, upstreams)

pytestmark = pytest.mark.django_db(transaction=True)
MILLION = 1_000_000

# model, its answer, (input, output) tokens it reports, (input, output) USD per million, and
# the two ways its tests send the key (whole, streamed): each style meets each kind of answer.
PROTOCOLS = [
    pytest.param("claude:claude-ok", "Hello from Claude", (12, 3), ("3", "15"), ("x-api-key", "auth_token"),
                 id="anthropic"),
    pytest.param("mock:ok", "Hello from upstream", (8, 3), ("0.27", "1.10"), ("api_key", "x-api-key"), id="openai"),
    pytest.param("google:gemini-ok", "Hello from Gemini", (12, 3), ("0.30", "2.50"), ("auth_token", "api_key"),
                 id="gemini"),
    pytest.param("demo:echo", "Say hello", None, ("0.10", "0.20"), ("x-api-key", "auth_token"), id="mock"),
]


def _cost(tokens: tuple[int, int], prices: tuple[str, str]) -> Decimal:
    return (tokens[0] * Decimal(prices[0]) + tokens[1] * Decimal(prices[1])) / MILLION


@pytest.mark.parametrize("model, answer, tokens, prices, styles", PROTOCOLS)
def test_create_answers_from_every_protocol(live_server, api_key, upstreams, model, answer, tokens, prices, styles):
    sdk = anthropic_sdk(live_server, api_key, styles[0])
    raw = sdk.messages.with_raw_response.create(model=model, max_tokens=100, system="Be brief.", messages=HELLO)
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == model
    assert [block.type for block in message.content] == ["text"] and message.content[0].text == answer
    assert message.stop_reason == "end_turn"
    record = booked(raw.headers["x-request-id"])
    assert raw.headers["request-id"] == raw.headers["x-request-id"] == message._request_id
    usage = (message.usage.input_tokens, message.usage.output_tokens)
    assert usage == (tokens or usage) and usage == (record.prompt_tokens, record.completion_tokens)
    assert record.cost == _cost(usage, prices) > 0
    assert raw.headers["x-mixgateway-cost-usd"] == str(record.cost.normalize())


@pytest.mark.parametrize("model, answer, tokens, prices, styles", PROTOCOLS)
def test_stream_answers_from_every_protocol(live_server, api_key, upstreams, model, answer, tokens, prices, styles):
    sdk = anthropic_sdk(live_server, api_key, styles[1])
    with sdk.messages.stream(model=model, max_tokens=100, system="Be brief.", messages=HELLO) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "message_delta" in kinds
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert "".join(block.text for block in message.content) == answer and message.model == model
    assert message.stop_reason == "end_turn"
    record = booked(request_id)
    usage = (message.usage.input_tokens, message.usage.output_tokens)
    assert usage == (tokens or usage) and usage == (record.prompt_tokens, record.completion_tokens)
    assert record.status == "completed" and record.stream
    assert record.cost == _cost(usage, prices) > 0


def test_passthrough_sends_the_body_unchanged_but_the_model(live_server, api_key, upstreams):
    _, claude, _ = upstreams
    sdk, sent = recording_sdk(live_server, api_key)
    system = [{"type": "text", "text": "Tu es bref — très bref.", "cache_control": {"type": "ephemeral"}}]
    message = sdk.messages.create(
        model="claude:claude-cached", max_tokens=1000, system=system,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello ✓",
                                                "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
        tools=[{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}], metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_body={"temperature": 0.7, "top_k": 40, "context_management": {"edits": []}},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31,extended-cache-ttl-2025-04-11"},
    )
    upstream = claude.requests[-1]
    caller_bytes = sent[-1].content
    assert b'"model":"claude:claude-cached"' in caller_bytes
    assert upstream["raw"] == caller_bytes.replace(b'"model":"claude:claude-cached"', b'"model":"claude-cached"')
    assert upstream["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31,extended-cache-ttl-2025-04-11"
    assert upstream["headers"]["anthropic-version"] == sent[-1].headers["anthropic-version"]
    assert upstream["headers"]["x-api-key"] == ANTHROPIC_SECRET and "authorization" not in upstream["headers"]
    assert message.model == "claude:claude-cached"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.cache_creation_input_tokens) == (12, 100, 10)


def test_passthrough_lowers_max_tokens_to_the_catalog_cap(claude_sdk, upstreams):
    # As Claude Code calls it: the SDK's beta namespace, POST /v1/messages?beta=true.
    message = claude_sdk.beta.messages.create(model="claude:claude-ok", max_tokens=5000, messages=HELLO,
                                              betas=["context-1m-2025-08-07"])
    sent = upstreams[1].requests[-1]
    assert sent["body"]["max_tokens"] == 1024  # what the reservation covered
    assert sent["headers"]["anthropic-beta"] == "context-1m-2025-08-07" and message.model == "claude:claude-ok"


def test_translation_to_the_chat_format(claude_sdk, upstreams):
    openai_upstream = upstreams[0]
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    claude_sdk.messages.create(
        model="mock:echo-request", max_tokens=50, system=[{"type": "text", "text": "Be brief."}],
        stop_sequences=["END"], metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 5},  # this SDK version has no parameter for them
        tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Look:"}, image,
                                         {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C", "is_error": False},
                {"type": "text", "text": "And tomorrow?"}]},
        ],
    )
    body = openai_upstream.requests[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                                     {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": WEATHER_TOOL["input_schema"], "description": "Weather for a city"}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False and body["stop"] == ["END"] and body["user"] == "u-1"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"]) == (50, 0.5, 0.9, 5)


@pytest.mark.parametrize("model", ["claude:claude-tools", "google:gemini-tools"])
def test_tool_use_and_its_result_round_trip(claude_sdk, upstreams, model):
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    message = claude_sdk.messages.create(model=model, max_tokens=100, messages=ask, tools=[WEATHER_TOOL],
                                         tool_choice={"type": "any"})
    call = next(block for block in message.content if block.type == "tool_use")
    assert (call.name, call.input, message.stop_reason) == ("get_weather", {"city": "Paris"}, "tool_use")
    follow_up = ask + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
                       {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}]}]
    ok_model = model.replace("tools", "ok")
    answer = claude_sdk.messages.create(model=ok_model, max_tokens=100, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.content[0].text.startswith("Hello from")
    _, claude, gemini = upstreams
    if model.startswith("claude"):
        assert claude.requests[-1]["body"]["messages"][2]["content"][0] == {
            "type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"}
    else:
        turn = gemini.requests[-1]["body"]["contents"][2]
        assert turn["parts"][0]["functionResponse"]["name"] == "get_weather"


@pytest.mark.parametrize("model", ["claude:claude-tools", "google:gemini-tools"])
def test_tool_use_streams_as_input_json_deltas(claude_sdk, upstreams, model):
    with claude_sdk.messages.stream(model=model, max_tokens=100, messages=HELLO, tools=[WEATHER_TOOL]) as stream:
        kinds = [(event.type, getattr(getattr(event, "delta", None), "type", None)) for event in stream]
        message = stream.get_final_message()
    assert ("content_block_delta", "input_json_delta") in kinds
    call = next(block for block in message.content if block.type == "tool_use")
    assert (call.name, call.input, message.stop_reason) == ("get_weather", {"city": "Paris"}, "tool_use")


def test_what_another_protocol_cannot_say_is_a_400(claude_sdk, upstreams):
    import anthropic

    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    cases = [
        {"messages": [{"role": "user", "content": [document]}]},
        {"messages": HELLO, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"messages": HELLO, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
    ]
    for case in cases:
        with pytest.raises(anthropic.BadRequestError) as err:
            claude_sdk.messages.create(model="mock:ok", max_tokens=10, **case)
        assert err.value.body["error"]["type"] == "invalid_request_error"
        assert "cannot be expressed" in err.value.body["error"]["message"]
    # The same thinking request goes to an Anthropic model as it is.
    claude_sdk.messages.create(model="claude:claude-ok", max_tokens=2000, messages=HELLO,
                               thinking={"type": "enabled", "budget_tokens": 1024})
    assert upstreams[1].requests[-1]["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
