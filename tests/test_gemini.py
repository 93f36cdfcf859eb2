"""The openai SDK through the gateway to a Gemini (Generative Language API) upstream:
translation both ways, streams, tools, images, finish reasons."""

import json

import openai
import pytest

from gateway.upstream.adapters.gemini_format import SIGNATURE_MARK
from gateway.routing.catalog_loader import load_catalog
from tests.conftest import catalog_yaml
from tests.gemini_mock import API_KEY, SIGNATURE

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object", "additionalProperties": False,
                                                          "properties": {"city": {"type": "string"}}}}}]
MODELS = ("gemini-ok", "gemini-tools", "gemini-thinking", "gemini-max-tokens", "gemini-safety", "gemini-blocked",
          "gemini-bad-request", "gemini-rate-limited", "gemini-server-error", "gemini-slow", "gemini-cut",
          "gemini-error-event", "gemini-unknown")
PRICES = 'input_per_mtok: "0.30", output_per_mtok: "2.50", cached_input_per_mtok: "0.075"'


def gemini_catalog(openai_url: str, gemini_url: str, key_env: str = "GEMINI_TEST_KEY") -> str:
    models = "\n".join(f"      {m}: {{{PRICES}, max_output_tokens: 1024}}" for m in MODELS)
    return catalog_yaml(openai_url) + f"""  google:
    protocol: gemini
    base_url: {gemini_url}
    api_key_env: {key_env}
    timeout_seconds: 1
    models:
{models}
      embed: {{upstream_model: text-embedding-004, input_per_mtok: "0.15", output_per_mtok: "0"}}
"""


@pytest.fixture
def gemini(catalog, gemini_upstream, monkeypatch):
    monkeypatch.setenv("GEMINI_TEST_KEY", API_KEY)
    load_catalog(gemini_catalog(catalog.base_url, gemini_upstream.base_url))
    gemini_upstream.requests.clear()
    return gemini_upstream


def test_it_translates_a_chat_request_and_its_answer(client, gemini):
    answer = client.chat.completions.create(model="google:gemini-ok", messages=HELLO, temperature=0.2, top_p=0.9,
                                            stop="END", seed=7)
    assert answer.choices[0].message.content == "Hello from Gemini"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "google:gemini-ok"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 3)
    sent = gemini.requests[-1]
    assert sent["path"] == "/v1beta/models/gemini-ok:generateContent"
    assert sent["headers"]["x-goog-api-key"] == API_KEY and "authorization" not in sent["headers"]
    assert sent["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["body"]["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
    assert sent["body"]["generationConfig"] == {"maxOutputTokens": 1024, "temperature": 0.2, "topP": 0.9,
                                                "seed": 7, "stopSequences": ["END"]}


def test_a_conversation_alternates_user_and_model(client, gemini):
    messages = HELLO + [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again"},
                        {"role": "user", "content": "please"}]
    client.chat.completions.create(model="google:gemini-ok", messages=messages, max_tokens=50)
    sent = gemini.requests[-1]["body"]
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]},
                                {"role": "model", "parts": [{"text": "Hi."}]},
                                {"role": "user", "parts": [{"text": "Again"}, {"text": "please"}]}]
    assert sent["generationConfig"]["maxOutputTokens"] == 50


def test_it_streams_with_a_final_usage_chunk(client, gemini):
    chunks = list(client.chat.completions.create(model="google:gemini-ok", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Gemini"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.model == "google:gemini-ok" for c in chunks)
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 3)
    assert chunks[-1].usage.model_extra["cost"] == pytest.approx((12 * 0.30 + 3 * 2.50) / 1e6)
    assert gemini.requests[-1]["path"] == "/v1beta/models/gemini-ok:streamGenerateContent?alt=sse"


def test_it_translates_tools_both_ways(client, gemini):
    answer = client.chat.completions.create(model="google:gemini-tools", messages=HELLO, tools=TOOLS,
                                            tool_choice="required")
    call = answer.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.id.endswith(SIGNATURE_MARK + SIGNATURE)  # Gemini's signature rides in the id
    assert answer.choices[0].finish_reason == "tool_calls"
    sent = gemini.requests[-1]["body"]
    assert sent["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Weather for a city",
        "parametersJsonSchema": TOOLS[0]["function"]["parameters"]}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    # The result goes back as a functionResponse named after the call, its call signed again.
    follow_up = HELLO + [answer.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}]
    client.chat.completions.create(model="google:gemini-ok", messages=follow_up, tools=TOOLS,
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
    sent = gemini.requests[-1]["body"]
    assert sent["contents"][1] == {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                                                "args": {"city": "Paris"}},
                                                               "thoughtSignature": SIGNATURE}]}
    assert sent["contents"][2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "get_weather", "response": {"output": "18 C, sunny"}}}]}
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


def test_a_call_made_elsewhere_goes_back_with_the_documented_placeholder_signature(client, gemini):
    call = {"id": "call_from_another_model", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    client.chat.completions.create(model="google:gemini-ok", tools=TOOLS, messages=HELLO + [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_from_another_model", "content": '{"celsius": 3}'}])
    contents = gemini.requests[-1]["body"]["contents"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                                     "thoughtSignature": "skip_thought_signature_validator"}]
    # A JSON-object result goes as it is.
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"celsius": 3}}}]


def test_tool_calls_stream(client, gemini):
    chunks = list(client.chat.completions.create(model="google:gemini-tools", messages=HELLO, tools=TOOLS,
                                                 stream=True))
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_images_become_inline_data_or_file_data(client, gemini):
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]
    client.chat.completions.create(model="google:gemini-ok", messages=[{"role": "user", "content": content}])
    parts = gemini.requests[-1]["body"]["contents"][0]["parts"]
    assert parts == [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                     {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}}]


def test_json_schema_output_is_asked_for(client, gemini):
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}}
    client.chat.completions.create(model="google:gemini-ok", messages=HELLO, response_format={
        "type": "json_schema", "json_schema": {"name": "greeting", "schema": schema}})
    config = gemini.requests[-1]["body"]["generationConfig"]
    assert (config["responseMimeType"], config["responseJsonSchema"]) == ("application/json", schema)


@pytest.mark.parametrize("model, finish_reason, text", [
    ("gemini-max-tokens", "length", "Hello from"),
    ("gemini-safety", "content_filter", ""),
    ("gemini-blocked", "content_filter", ""),  # the prompt itself was blocked: no candidates
    ("gemini-thinking", "stop", "Hello from Gemini"),  # thought parts are not answer text
])
def test_finish_reasons_are_openai_ones(client, gemini, model, finish_reason, text):
    answer = client.chat.completions.create(model=f"google:{model}", messages=HELLO)
    assert (answer.choices[0].finish_reason, answer.choices[0].message.content) == (finish_reason, text)
    chunks = list(client.chat.completions.create(model=f"google:{model}", messages=HELLO, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == finish_reason
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text


@pytest.mark.parametrize("extra, param", [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"parallel_tool_calls": False, "tools": TOOLS}, "parallel_tool_calls"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"tools": [{"type": "web_search"}]}, "tools"),
])
def test_what_gemini_cannot_express_is_a_400_not_dropped(client, gemini, extra, param):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="google:gemini-ok", messages=HELLO, **extra)
    assert (err.value.code, err.value.param) == ("unsupported_parameter", param)
    assert gemini.requests == []


def test_embeddings_come_from_batch_embed_contents(client, gemini):
    result = client.embeddings.create(model="google:embed", input=["one", "two"], dimensions=3)
    assert [d.embedding for d in result.data] == [pytest.approx([0.1, 0.11, 0.12]), pytest.approx([0.2, 0.21, 0.22])]
    assert result.model == "google:embed" and result.usage.prompt_tokens > 0  # estimated: Gemini does not count
    sent = gemini.requests[-1]
    assert sent["path"] == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent["body"] == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": text}]}, "outputDimensionality": 3}
        for text in ("one", "two")]}
    floats = client.embeddings.create(model="google:embed", input="one", encoding_format="float")
    assert floats.data[0].embedding == [0.1, 0.11, 0.12, 0.13]
