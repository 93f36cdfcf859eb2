"""Streams from OpenAI-protocol upstreams are relayed as the upstream's bytes, with only the
top-level "model" rewritten to the caller's name; chunks of unusual shape are parsed and
rewritten instead, and text that merely mentions "model" is never touched."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
import requests

from console.tenancy.models import Organization
from gateway import relay
from gateway.upstream.adapters.base import RawChunk
from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import booked
from tests.conftest import catalog_yaml
from tests.live_threads import wait_until_idle
from tests.test_observability import request_lines

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]
TRICKY = 'he wrote \\"model\\": \\"x\\", \\"choices\\": [\\"y\\"] and {\\"usage\\": 1}'  # JSON-escaped text
# Chunks as the scripted upstream writes them; MODEL stands for the model value.
SHAPES = {
    "compact": [
        '{"id":"c1","object":"chat.completion.chunk","created":1,"model":MODEL,"choices":[{"index":0,'
        '"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}',
        '{"id":"c1","object":"chat.completion.chunk","created":1,"model":MODEL,"choices":[{"index":0,'
        '"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}',
        '{"id":"c1","object":"chat.completion.chunk","created":1,"model":MODEL,"system_fingerprint":"fp_1",'
        '"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null}',
    ],
    "spaced": [
        '{ "id" : "c2",  "model" :\t MODEL , "object": "chat.completion.chunk", "choices" : [{"index": 0, '
        '"delta": {"role": "assistant", "content": "Hel"}, "finish_reason": null}]}',
        '{"model": MODEL, "id": "c2", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": null}]}',
    ],
    "text-says-model": [
        '{"id":"c3","model":MODEL,"choices":[{"index":0,"delta":{"role":"assistant","content":"'
        + TRICKY + '"},"finish_reason":null}]}',
        '{"id":"c3","model":MODEL,"choices":[{"index":0,"delta":{"content":" \\"model\\":\\"z\\","},'
        '"finish_reason":null}],"model_note":"\\"model\\""}',
    ],
    # Shapes the byte-level rewrite leaves to the parser.
    "model-after-choices": [
        '{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"id":"c4","model":MODEL}',
        '{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"model":MODEL}',
    ],
    "no-model": [
        '{"id":"c5","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},'
        '"finish_reason":null}]}',
    ],
    "nested-before-choices": [
        '{"id":"c6","meta":{"model":"inner"},"model":MODEL,"choices":[{"index":0,"delta":{"content":"Hel"},'
        '"finish_reason":null}]}',
        '{"id":"c6","note":"a \\"quoted\\" note","model":MODEL,"choices":[{"index":0,"delta":{"content":"lo"},'
        '"finish_reason":null}]}',
    ],
}
BYTE_LEVEL = {"compact", "spaced", "text-says-model"}
HOLD_SECONDS = 2.0
FINISH = '{"id":"cz","object":"chat.completion.chunk","created":1,"model":MODEL,"choices":[{"index":0,"delta":{},' \
         '"finish_reason":"stop"}]}'
USAGE = '{"id":"cz","object":"chat.completion.chunk","created":1,"model":MODEL,"choices":[],' \
        '"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}'


def events(shape: str, model_json: str, usage: bool = True) -> list[str]:
    chunks = SHAPES[shape] + [FINISH] + ([USAGE] if usage else [])
    return [chunk.replace("MODEL", model_json) for chunk in chunks]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except ConnectionError:
            pass  # the gateway hangs up once it has read [DONE]

    def setup(self):
        super().setup()
        self.server.connections += 1

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        shape, _, option = body["model"].partition("+")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events(shape, json.dumps(body["model"]), usage=option != "no-usage") + ["[DONE]"]:
            data = f"data: {event}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
        if option == "hold":
            time.sleep(HOLD_SECONDS)  # a server that keeps the body open after [DONE]
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def scripted():
    """An upstream that streams SHAPES[its model] byte for byte."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.connections = 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


UNUSUAL = 'smart "ü" \\ ✓'  # a caller's name that JSON must escape


@pytest.fixture
def shapes(catalog, scripted):
    models = "\n".join(f'      {shape}: {{input_per_mtok: "1", output_per_mtok: "2"}}' for shape in SHAPES)
    load_catalog(catalog_yaml(catalog.base_url) + f"""
  script:
    protocol: openai
    base_url: http://127.0.0.1:{scripted.server_address[1]}/v1
    models:
{models}
      compact+no-usage: {{input_per_mtok: "1", output_per_mtok: "2"}}
      compact+hold: {{input_per_mtok: "1", output_per_mtok: "2"}}
      'modèle "q" \\ ✓': {{input_per_mtok: "1", output_per_mtok: "2", upstream_model: spaced}}
aliases:
  {json.dumps(UNUSUAL)}: script:compact
""")
    return scripted


def relayed(gateway_url: str, api_key: str, model: str, **body) -> tuple[requests.Response, list[bytes]]:
    resp = requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                         json={"model": model, "messages": HELLO, "stream": True, **body}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.content.endswith(b"\n\ndata: [DONE]\n\n")
    return resp, [event.removeprefix(b"data: ") for event in resp.content.split(b"\n\n") if event][:-1]


@pytest.mark.parametrize("shape", sorted(BYTE_LEVEL))
def test_usual_chunks_are_relayed_byte_for_byte_but_for_the_model(gateway_url, api_key, shapes, shape):
    _, relayed_events = relayed(gateway_url, api_key, f"script:{shape}")
    expected = events(shape, json.dumps(f"script:{shape}"))
    # Every chunk but the usage one (which gains its cost) is the upstream's own bytes.
    assert relayed_events[:-1] == [event.encode() for event in expected[:-1]]
    usage = json.loads(relayed_events[-1])
    assert usage["model"] == f"script:{shape}" and usage["usage"]["cost"] == pytest.approx(0.000012)


@pytest.mark.parametrize("shape", sorted(set(SHAPES) - BYTE_LEVEL))
def test_unusual_chunks_are_parsed_and_get_the_callers_model(gateway_url, api_key, shapes, shape):
    _, relayed_events = relayed(gateway_url, api_key, f"script:{shape}")
    upstream = [json.loads(event) for event in events(shape, json.dumps(shape))]
    assert len(relayed_events) == len(upstream)
    for sent, received in zip(upstream, map(json.loads, relayed_events)):
        received.get("usage", {}).pop("cost", None)
        assert received == {**sent, "model": f"script:{shape}"}
    assert json.loads(relayed_events[0]).get("meta", {}).get("model", "inner") == "inner"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_sdk_reads_every_shape(client, shapes, shape):
    chunks = list(client.chat.completions.create(model=f"script:{shape}", messages=HELLO, stream=True))
    assert all(chunk.model == f"script:{shape}" for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                       for e in events(shape, '"x"') if json.loads(e)["choices"])
    assert text == expected
    assert chunks[-1].usage.total_tokens == 10


@pytest.mark.parametrize("model", ['script:modèle "q" \\ ✓', UNUSUAL])
def test_a_callers_model_name_is_escaped_exactly(client, gateway_url, api_key, shapes, model):
    chunks = list(client.chat.completions.create(model=model, messages=HELLO, stream=True))
    assert [chunk.model for chunk in chunks] == [model] * len(chunks)
    _, relayed_events = relayed(gateway_url, api_key, model)
    assert all(json.dumps(model, ensure_ascii=False).encode() in event for event in relayed_events)


def test_text_that_says_model_reaches_the_caller_unchanged(client, catalog):
    # The real mock upstream echoes the request: its one token is JSON that says "model".
    question = [{"role": "user", "content": 'reply with {"model": "evil", "choices": [], "usage": {}}'}]
    chunks = list(client.chat.completions.create(model="mock:echo-request", messages=question, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text)["model"] == "echo-request"
    assert json.loads(text)["messages"] == question
    assert {chunk.model for chunk in chunks} == {"mock:echo-request"}


def test_a_stream_without_usage_is_billed_on_the_relayed_text(gateway_url, api_key, shapes):
    resp, relayed_events = relayed(gateway_url, api_key, "script:compact+no-usage")
    assert json.loads(relayed_events[-1])["usage"]["completion_tokens"] == 2  # "Hel", "lo"
    assert booked(resp.headers["x-request-id"]).basis == "estimated"


def test_streams_reuse_their_upstream_connection(client, shapes):
    for _ in range(3):
        list(client.chat.completions.create(model="script:compact", messages=HELLO, stream=True))
    before = shapes.connections
    for _ in range(3):
        list(client.chat.completions.create(model="script:compact", messages=HELLO, stream=True))
    assert shapes.connections == before


def test_an_upstream_that_stays_open_after_done_does_not_hold_the_caller(client, shapes):
    started = time.monotonic()
    chunks = list(client.chat.completions.create(model="script:compact+hold", messages=HELLO, stream=True))
    assert time.monotonic() - started < HOLD_SECONDS / 2
    assert chunks[-1].usage.total_tokens == 10


def test_a_long_streams_text_is_counted_in_order_as_it_goes(gateway_url, catalog, org, monkeypatch, caplog):
    # Text waiting to be read is counted whenever more than UNREAD_LIMIT_BYTES of it piles up.
    monkeypatch.setattr(relay, "UNREAD_LIMIT_BYTES", 500)
    Organization.objects.filter(pk=org.pk).update(log_content=True)
    _, secret = mint_api_key(org)
    caplog.set_level("INFO", logger="mixgateway.requests")
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)
    list(sdk.chat.completions.create(model="mock:long-stream", messages=HELLO, stream=True))
    wait_until_idle()
    assert request_lines(caplog)[-1]["completion"] == "".join(f"tok{i} " for i in range(100))


@pytest.mark.parametrize("data, found", [
    (b'{"id":"a","model":"m","choices":[]}', b'"m"'),
    (b'{"model" : "m" ,"choices":[]}', b'"m"'),
    (b'{"id":"a","model":"m","x":{"model":"n"},"choices":[]}', None),  # nested before choices
    (b'{"id":"a \\"b","model":"m","choices":[]}', None),  # an escape before choices
    (b'{"object":"model","choices":[]}', None),  # "model" as a value, not a key
    (b'{"choices":[],"model":"m"}', None),
    (b'{"id":"a","model":"m","model":"n","choices":[]}', None),  # a duplicate key
    (b'{"id":"[","model":"m","choices":[]}', None),
    (b'[{"model":"m","choices":[]}]', None),
    (b'{"id":"a","model":"m"}', None),
    (b'{"id":"a","model":7,"choices":[]}', None),
])
def test_the_model_value_is_found_only_where_it_is_certain(data, found):
    span = RawChunk(data).model_span()
    assert (data[span[0]:span[1]] if span else None) == found
