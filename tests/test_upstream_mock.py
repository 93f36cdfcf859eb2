"""Self-tests for the mock upstream: it must speak the protocol the real SDK expects.

Runs without Django: ``pytest tests/test_upstream_mock.py -p no:django``.
"""

import json
import time

import openai
import pytest
import requests

from tests.upstream_mock import MockUpstream

pytestmark = []


@pytest.fixture(scope="module")
def mock():
    with MockUpstream() as server:
        yield server


@pytest.fixture
def client(mock):
    mock.reset()
    return openai.OpenAI(base_url=mock.base_url, api_key="x", max_retries=0, timeout=5)


def _sse_events(response):
    """Parsed ``data:`` payloads of an SSE response, as they arrive."""
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            data = line[len(b"data: "):].decode()
            yield data if data == "[DONE]" else json.loads(data)


def test_ok_non_stream(client, mock):
    completion = client.chat.completions.create(
        model="ok", messages=[{"role": "user", "content": "hi"}])
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-mock")
    assert completion.model == "ok"
    assert completion.choices[0].message.content == "Hello from upstream"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (8, 3, 11)

    [recorded] = mock.requests
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["headers"]["authorization"] == "Bearer x"
    assert recorded["body"]["messages"] == [{"role": "user", "content": "hi"}]


def test_ok_stream_with_usage_ends_with_usage_chunk_and_done(mock):
    response = requests.post(f"{mock.base_url}/chat/completions", stream=True, timeout=5, json={
        "model": "ok", "messages": [], "stream": True,
        "stream_options": {"include_usage": True}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    events = list(_sse_events(response))

    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [e["choices"][0]["delta"]["content"] for e in events[1:4]] == [
        "Hello", " from", " upstream"]
    assert events[4]["choices"][0]["finish_reason"] == "stop"
    assert events[5]["choices"] == []
    assert events[5]["usage"] == {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}
    assert events[6] == "[DONE]"
    assert len(events) == 7


def test_sdk_stream_reassembles_text(client):
    stream = client.chat.completions.create(model="ok", messages=[], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from upstream"


def test_slow_stream_delivers_first_chunk_before_the_delay(mock):
    started = time.monotonic()
    response = requests.post(
        f"{mock.base_url}/chat/completions", stream=True, timeout=5,
        headers={"x-mock-delay": "0.5"},
        json={"model": "slow-stream", "messages": [], "stream": True})
    events = _sse_events(response)
    first = next(events)
    first_at = time.monotonic() - started
    rest = list(events)
    total = time.monotonic() - started

    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first_at < 0.4
    assert total >= 0.5
    assert rest[-1] == "[DONE]"


def test_fail_500_status_and_envelope(client, mock):
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model="fail-500", messages=[])
    assert excinfo.value.status_code == 500
    assert excinfo.value.body["message"] == "internal upstream failure"

    response = requests.post(f"{mock.base_url}/chat/completions", timeout=5,
                             json={"model": "fail-429", "messages": []})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_cut_mid_stream_raises_on_the_client(client, mock):
    stream = client.chat.completions.create(model="cut-mid-stream", messages=[], stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hello"]

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(f"{mock.base_url}/chat/completions", timeout=5,
                      json={"model": "cut-mid-stream", "messages": []})


def test_embeddings(mock):
    response = requests.post(f"{mock.base_url}/embeddings", timeout=5,
                             json={"model": "emb", "input": ["a", "b"]})
    body = response.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["data"][0]["embedding"] == [0.1, 0.2, 0.3]
    assert body["model"] == "emb"
    assert body["usage"] == {"prompt_tokens": 10, "total_tokens": 10}

    client = openai.OpenAI(base_url=mock.base_url, api_key="x", max_retries=0)
    single = client.embeddings.create(model="emb", input="hello", encoding_format="float")
    assert len(single.data) == 1 and single.usage.prompt_tokens == 5


def test_unknown_path_and_invalid_json(mock):
    response = requests.get(f"{mock.base_url}/nope", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"

    response = requests.post(f"{mock.base_url}/chat/completions", data=b"{oops", timeout=5,
                             headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
