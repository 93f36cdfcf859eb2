"""The official openai SDK against the live gateway: answers, streams, models."""

import json

import openai
import pytest

from tests.conftest import UPSTREAM_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]


def test_it_answers_non_streaming(client, catalog):
    answer = client.chat.completions.create(model="mock:ok", messages=HELLO)
    assert answer.choices[0].message.content == "Hello from upstream"
    assert answer.model == "mock:ok"
    assert answer.usage.prompt_tokens == 8
    assert answer.usage.completion_tokens == 3
    sent = catalog.requests[-1]
    assert sent["body"]["model"] == "ok"
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"


def test_it_streams_and_ends_with_usage_even_unasked(client, catalog):
    chunks = list(client.chat.completions.create(model="mock:ok", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from upstream"
    assert all(c.model == "mock:ok" for c in chunks)
    assert chunks[-1].usage.prompt_tokens == 8 and chunks[-1].usage.completion_tokens == 3
    assert catalog.requests[-1]["body"]["stream_options"] == {"include_usage": True}


def test_it_honours_callers_stream_options(client, catalog):
    stream = client.chat.completions.create(
        model="mock:ok", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage.total_tokens == 11


def test_it_passes_unknown_fields_through_unchanged(client, catalog):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    client.chat.completions.create(
        model="mock:echo-request", messages=HELLO, tools=tools, tool_choice="auto", seed=7, stop=["x"],
        response_format={"type": "json_object"}, top_p=0.5, user="u-1", logprobs=True, n=1,
        extra_body={"vendor_flag": {"nested": [1, 2]}},
    )
    sent = catalog.requests[-1]["body"]
    assert sent["tools"] == tools
    assert sent["tool_choice"] == "auto"
    assert sent["seed"] == 7 and sent["stop"] == ["x"] and sent["top_p"] == 0.5 and sent["user"] == "u-1"
    assert sent["response_format"] == {"type": "json_object"} and sent["logprobs"] is True
    assert sent["vendor_flag"] == {"nested": [1, 2]}
    assert sent["model"] == "echo-request"


def test_it_reports_cached_and_reasoning_tokens(client):
    answer = client.chat.completions.create(model="mock:reasoning", messages=HELLO)
    assert answer.usage.prompt_tokens_details.cached_tokens == 4
    assert answer.usage.completion_tokens_details.reasoning_tokens == 2


def test_it_estimates_usage_when_upstream_gives_none(client):
    answer = client.chat.completions.create(model="mock:no-usage", messages=HELLO)
    assert answer.usage.completion_tokens >= 3
    chunks = list(client.chat.completions.create(model="mock:no-usage", messages=HELLO, stream=True))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 3


def test_it_relays_long_streams_in_order(client):
    chunks = list(client.chat.completions.create(model="mock:long-stream", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"tok{i} " for i in range(100))
    assert chunks[-1].usage.completion_tokens == 100


def test_the_demo_model_answers_offline(client):
    answer = client.chat.completions.create(model="demo:echo", messages=[{"role": "user", "content": "ping pong"}])
    assert answer.choices[0].message.content == "ping pong"
    assert answer.model == "demo:echo"
    assert answer.usage.completion_tokens == 2
    chunks = list(client.chat.completions.create(
        model="demo:echo", messages=[{"role": "user", "content": "ping pong"}], stream=True
    ))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ping pong"
    assert chunks[-1].usage.completion_tokens == 2


def test_the_demo_model_respects_max_tokens(client):
    answer = client.chat.completions.create(
        model="demo:echo", messages=[{"role": "user", "content": "one two three four"}], max_tokens=2
    )
    assert answer.choices[0].message.content == "one two"
    assert answer.choices[0].finish_reason == "length"


def test_it_lists_only_the_models_a_key_may_use(client, org, gateway_url):
    ids = {m.id for m in client.models.list()}
    assert {"mock:ok", "demo:echo"} <= ids
    from gateway.keys.api_keys import mint_api_key

    _, secret = mint_api_key(org, allowed_models=["demo:echo"])
    limited = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)
    assert [m.id for m in limited.models.list()] == ["demo:echo"]
    assert limited.models.retrieve("demo:echo").owned_by == "demo"
    with pytest.raises(openai.NotFoundError) as err:
        limited.models.retrieve("mock:ok")
    assert err.value.code == "model_not_found"


def test_every_response_has_a_request_id(client):
    raw = client.chat.completions.with_raw_response.create(model="demo:echo", messages=HELLO)
    assert len(raw.headers["x-request-id"]) == 36
    assert json.loads(raw.text)["model"] == "demo:echo"
