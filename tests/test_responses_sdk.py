"""POST /v1/responses through the official openai SDK, to every upstream protocol: whole and
streamed answers, tools, the output cap, and money to the picodollar."""

import json
from decimal import Decimal

import openai
import pytest
import requests
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from billing.ledger import credit
from console.tenancy.actions import create_organization
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import OK_COST, booked
from tests.responses_helpers import PLAIN, sse_events, upstreams  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
PROTOCOLS = sorted(PLAIN)


def cost_header(raw) -> Decimal:
    return Decimal(raw.headers["x-mixgateway-cost-usd"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_it_answers_whole_and_streamed_on_every_protocol(client, gateway_url, api_key, upstreams, protocol):
    model, text, tokens = PLAIN[protocol]
    raw = client.responses.with_raw_response.create(model=model, input="Say hello", instructions="Be brief.")
    Response.model_validate_json(raw.content)  # every field the SDK's types require, of its type
    response = raw.parse()
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.incomplete_details is None
    assert response.model == model and response.output_text == text
    message = response.output[0]
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert message.id.startswith("msg_") and message.content[0].annotations == []
    usage = response.usage
    if tokens:
        assert (usage.input_tokens, usage.output_tokens) == tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    record = booked(raw.headers["x-request-id"])
    assert record.cost == cost_header(raw) == Decimal(str(usage.model_extra["cost"]))
    assert (record.prompt_tokens, record.completion_tokens) == (usage.input_tokens, usage.output_tokens)

    # Streamed: OpenAI's event sequence, read raw to see every event line.
    resp = requests.post(f"{gateway_url}/responses", headers={"Authorization": f"Bearer {api_key}"},
                         json={"model": model, "input": "Say hello", "stream": True}, timeout=20)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.content)
    for event in events:
        TypeAdapter(ResponseStreamEvent).validate_python(event)
    kinds = [e["type"] for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(e["delta"] for e in deltas) == text
    assert all(e["logprobs"] == [] and e["output_index"] == 0 and e["content_index"] == 0 for e in deltas)
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["model"] == model and final["id"] == events[0]["response"]["id"]
    assert final["output"][0]["content"][0]["text"] == text
    if tokens:
        assert (final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == tokens
    record = booked(resp.headers["x-request-id"])
    assert record.cost == Decimal(str(final["usage"]["cost"])) and record.status == "completed"


def test_the_sdk_reads_the_stream_and_its_helper(client, upstreams):
    events = list(client.responses.create(model="mock:ok", input="Say hello", stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "Hello from upstream"
    assert events[-1].response.usage.output_tokens == 3
    with client.responses.stream(model="mock:ok", input="Say hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello from upstream"


def test_the_same_tokens_cost_the_same_as_chat(client, upstreams):
    chat = client.chat.completions.with_raw_response.create(model="mock:ok",
                                                            messages=[{"role": "user", "content": "Say hello"}])
    answer = client.responses.with_raw_response.create(model="mock:ok", input="Say hello")
    chunks = list(client.chat.completions.create(model="mock:ok", messages=[{"role": "user", "content": "Hi"}],
                                                 stream=True))
    events = list(client.responses.create(model="mock:ok", input="Hi", stream=True))
    assert cost_header(chat) == cost_header(answer) == OK_COST
    assert booked(chat.headers["x-request-id"]).cost == booked(answer.headers["x-request-id"]).cost == OK_COST
    assert Decimal(str(chunks[-1].usage.model_extra["cost"])) == OK_COST
    assert Decimal(str(events[-1].response.usage.model_extra["cost"])) == OK_COST
    # Cached input and reasoning tokens land in their Responses buckets, costed as chat costs them.
    chat = client.chat.completions.with_raw_response.create(model="mock:reasoning",
                                                            messages=[{"role": "user", "content": "Hi"}])
    answer = client.responses.with_raw_response.create(model="mock:reasoning", input="Hi")
    usage = answer.parse().usage
    assert (usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens) == (4, 2)
    assert cost_header(chat) == cost_header(answer) == booked(answer.headers["x-request-id"]).cost


def test_it_translates_the_request_for_a_chat_upstream(client, upstreams):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    items = [
        {"role": "developer", "content": "Answer in JSON."},
        {"role": "user", "content": [{"type": "input_text", "text": "Look:"},
                                     {"type": "input_image", "image_url": "https://example.com/cat.png",
                                      "detail": "low"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18 C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "25 C"},
    ]
    client.responses.create(model="mock:echo-request", instructions="Be brief.", input=items, tools=[WEATHER],
                            tool_choice={"type": "function", "name": "get_weather"}, max_output_tokens=50,
                            temperature=0.5, top_p=0.9, metadata={"run": "7"}, user="u-1",
                            text={"format": {"type": "json_schema", "name": "answer", "schema": schema,
                                             "strict": True}})
    sent = upstreams["openai"].requests[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in JSON."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/cat.png",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "25 C"},
    ]
    assert sent["tools"] == [{"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                             "strict": True}}
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["user"]) == (50, 0.5, 0.9, "u-1")
    assert not {"metadata", "store", "input", "instructions", "text", "max_output_tokens"} & set(sent)


@pytest.mark.parametrize("model", ["claude:claude-tools", "google:gemini-tools"])
def test_a_function_call_round_trip(client, upstreams, model):
    for stream in (True, False):
        function_call_round_trip(client, upstreams, model, stream)


def function_call_round_trip(client, upstreams, model, stream):
    if stream:
        events = list(client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER], stream=True))
        kinds = [e.type for e in events]
        assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
        first = events[-1].response
    else:
        first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.id.startswith("fc_") and call.call_id and call.status == "completed"
    follow_up = client.responses.create(model=model, previous_response_id=first.id, tools=[WEATHER],
                                        input=[{"type": "function_call_output", "call_id": call.call_id,
                                                "output": "18 C, sunny"}])
    assert follow_up.status == "completed" and follow_up.previous_response_id == first.id
    sent = upstreams["anthropic" if model.startswith("claude") else "gemini"].requests[-1]["body"]
    assert "18 C, sunny" in json.dumps(sent) and "Weather in Paris?" in json.dumps(sent)


def test_a_capped_answer_is_incomplete(client, upstreams):
    answer = client.responses.create(model="mock:honours-max-tokens", input="Count", max_output_tokens=5)
    assert upstreams["openai"].requests[-1]["body"]["max_tokens"] == 5
    assert answer.status == "incomplete" or answer.usage.output_tokens == 5
    capped = client.responses.create(model="google:gemini-max-tokens", input="Count", max_output_tokens=2)
    assert capped.status == "incomplete" and capped.incomplete_details.reason == "max_output_tokens"
    assert capped.max_output_tokens == 2 and capped.output_text == "Hello from"
    events = list(client.responses.create(model="google:gemini-max-tokens", input="Count", stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.status == "incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_the_output_cap_is_what_admission_reserves(gateway_url, upstreams, db):
    org = create_organization("Gamma", "dora@gamma.example")
    # Too little for 4096 output tokens at 1.10 USD/M (0.0045 USD), enough for 10.
    credit(org.pk, Decimal("0.001"), note="a little")
    client = openai.OpenAI(base_url=gateway_url, api_key=mint_api_key(org, name="t")[1], max_retries=0)
    with pytest.raises(openai.RateLimitError) as err:
        client.responses.create(model="mock:ok", input="Say hello")
    assert err.value.code == "insufficient_quota"
    assert client.responses.create(model="mock:ok", input="Say hello", max_output_tokens=10).status == "completed"


BAD_REQUESTS = [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]}, "input[0].content[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
     "input[0].content[0].file_id"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]}, "input[0].type"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"background": True}, "background"),
    ({"seed": 7}, "seed"),
    ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"input": []}, "input"),
    ({"metadata": {"n": 1}}, "metadata"),
]


def test_what_chat_cannot_express_is_a_400_naming_the_parameter(client, upstreams):
    for body, param in BAD_REQUESTS:
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model="mock:ok", input=body.pop("input", "Hi"), extra_body=body)
        assert (err.value.param, err.value.type) == (param, "invalid_request_error"), body
    assert upstreams["openai"].requests == []
