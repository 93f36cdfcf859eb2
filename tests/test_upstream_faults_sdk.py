"""What a caller sees, through the live gateway and the openai SDK, when an upstream sends
a compression bomb, an endless stream, or closes kept-alive connections as they are reused."""

import json
import time

import openai
import pytest

from gateway.upstream import calls as upstream
from gateway.routing.catalog_loader import load_catalog
from tests.conftest import catalog_yaml
from tests.test_http1 import RESET, answer, chunk, chunked, serve  # noqa: F401 (serve is a fixture)
from tests.test_http1_limits import MIB, gzip_bomb

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = [{"role": "user", "content": "Say hello"}]
COMPLETION = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "ok",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}).encode()


@pytest.fixture
def fresh_upstream_pool(settings, monkeypatch):
    """The gateway's upstream pool, built again from the settings the test sets."""
    monkeypatch.setattr(upstream, "_pool", None)
    yield settings
    upstream.pool().clear()


def provider_at(server) -> None:
    load_catalog(catalog_yaml(server.url().removesuffix("/chat/completions")))


def test_a_gzip_bomb_is_a_502_upstream_error(client, serve, fresh_upstream_pool):
    fresh_upstream_pool.GATEWAY_MAX_UPSTREAM_BYTES = 8 * MIB
    bomb = gzip_bomb(256)
    server = serve(lambda request: [answer(bomb, headers="Content-Encoding: gzip\r\n")])
    provider_at(server)
    with pytest.raises(openai.APIStatusError) as failure:
        client.chat.completions.create(model="mock:ok", messages=HELLO)
    assert failure.value.status_code == 502
    assert failure.value.body["code"] == "upstream_error"
    assert "larger than this gateway accepts" in failure.value.body["message"]


def test_a_gzip_bomb_on_a_stream_is_a_502_upstream_error(client, serve, fresh_upstream_pool):
    fresh_upstream_pool.GATEWAY_MAX_UPSTREAM_BYTES = 8 * MIB
    bomb = gzip_bomb(256)
    server = serve(lambda request: [chunked(headers="Content-Encoding: gzip\r\n")[:-5], chunk(bomb), b"0\r\n\r\n"])
    provider_at(server)
    with pytest.raises(openai.APIStatusError) as failure:
        list(client.chat.completions.create(model="mock:ok", messages=HELLO, stream=True))
    assert failure.value.status_code == 502
    assert failure.value.body["code"] == "upstream_error"


def test_an_endless_stream_is_cut_at_the_cap_with_an_error(client, serve, fresh_upstream_pool):
    fresh_upstream_pool.GATEWAY_MAX_UPSTREAM_BYTES = MIB
    event = b'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "ok", ' \
            b'"choices": [{"index": 0, "delta": {"content": "' + b"la " * 1000 + b'"}, "finish_reason": null}]}\n\n'
    server = serve(lambda request: [chunked()[:-5], chunk(event), 0.1] + [chunk(event * 20)] * 40)
    provider_at(server)
    stream = client.chat.completions.create(model="mock:ok", messages=HELLO, stream=True)
    received = 0
    with pytest.raises(openai.APIError, match="larger than this gateway accepts"):
        for part in stream:
            received += len(part.choices[0].delta.content or "") if part.choices else 0
    assert 0 < received * 100 < MIB * 100  # some text came through, then the stream ended in an error


def test_a_kept_alive_connection_closed_on_reuse_is_neither_a_failure_nor_a_cooldown(client, serve,
                                                                                   fresh_upstream_pool):
    # No retries and a cooldown after a single failure: a dead pooled connection counted
    # as a failure would fail the second call or cool the deployment for the third.
    fresh_upstream_pool.GATEWAY_RETRIES = 0
    fresh_upstream_pool.GATEWAY_COOLDOWN_AFTER_FAILURES = 1
    server = serve(lambda request: [RESET] if len(server.requests) == 2 else [answer(COMPLETION)])
    provider_at(server)
    for _ in range(3):
        assert client.chat.completions.create(model="mock:ok", messages=HELLO).choices[0].message.content == "Hello"
        time.sleep(0.05)
    assert (server.connections, len(server.requests)) == (2, 4)
