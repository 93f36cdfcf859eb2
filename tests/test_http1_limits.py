"""The upstream client's limits: one retry on a new connection when a kept-alive one turns
out closed before any byte came back (and only then), and the cap on what an answer may
take, read and decoded (a gzip bomb), streamed or not."""

import gzip
import struct
import zlib

import pytest

from gateway.upstream import http1, calls as upstream
from gateway.api.errors import UpstreamError
from tests.test_http1 import CLOSE, RESET, answer, chunk, chunked, post, serve  # noqa: F401 (serve is a fixture)

MIB = 1024 * 1024


def gzip_bomb(inflated_mib: int) -> bytes:
    """A valid gzip member that inflates to `inflated_mib` MiB of zeros, made without ever
    holding them: each MiB compresses to the same bytes after a full flush."""
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    one_mib = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + one_mib * inflated_mib + compressor.flush()
            + struct.pack("<II", crc, (inflated_mib * MIB) & 0xFFFFFFFF))


@pytest.fixture
def small_pool():
    pool = http1.Pool(max_idle=4, max_answer_bytes=MIB)
    yield pool
    pool.clear()


@pytest.fixture
def pool():
    pool = http1.Pool(max_idle=4)
    yield pool
    pool.clear()


# One retry on a new connection


@pytest.mark.parametrize("drop", [CLOSE, RESET])
def test_a_kept_alive_connection_closed_as_it_is_reused_is_retried_once_on_a_new_one(serve, pool, drop):
    # The server drops the kept-alive connection when the second request arrives on it,
    # the race every keep-alive client meets when a server's idle timeout crosses its request.
    server = serve(lambda request: [drop] if len(server.requests) == 2 else [answer()])
    assert post(pool, server.url()).status == 200
    assert post(pool, server.url()).data == b'{"ok": true}'
    assert (server.connections, len(server.requests)) == (2, 3)


def test_a_new_connection_closed_without_an_answer_is_not_retried(serve, pool):
    server = serve(lambda request: [CLOSE])
    with pytest.raises(http1.ClosedBeforeAnswer):
        post(pool, server.url())
    assert (server.connections, len(server.requests)) == (1, 1)


def test_a_kept_alive_connection_that_broke_after_answering_in_part_is_not_retried(serve, pool):
    server = serve(lambda request: [b"HTTP/1.1 200 OK\r\n", CLOSE] if len(server.requests) == 2 else [answer()])
    post(pool, server.url())
    with pytest.raises(http1.ProtocolError, match="in the middle of an answer"):
        post(pool, server.url())
    assert (server.connections, len(server.requests)) == (1, 2)


def test_a_retried_request_is_not_a_failure_for_the_caller(serve, monkeypatch):
    monkeypatch.setattr(upstream, "_pool", http1.Pool(max_idle=4))
    server = serve(lambda request: [RESET] if len(server.requests) == 2 else [answer()])
    for _ in range(3):
        assert upstream.post(server.url(), b"{}", {}, read_timeout=2, stream=False).status == 200
    upstream.pool().clear()


# The cap on an answer


def test_an_answer_within_the_cap_is_read_and_decoded(serve, small_pool):
    body = b'{"text": "' + b"z" * (MIB - 100) + b'"}'
    server = serve(lambda request: [answer(gzip.compress(body), headers="Content-Encoding: gzip\r\n")])
    assert post(small_pool, server.url()).data == body


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused_once_it_inflates_past_the_cap(serve, small_pool, encoding):
    bomb = gzip_bomb(64) if encoding == "gzip" else zlib.compress(bytes(64 * MIB), 9)
    server = serve(lambda request: [answer(bomb, headers=f"Content-Encoding: {encoding}\r\n")])
    with pytest.raises(http1.AnswerTooLarge, match="decodes to over 1048576 bytes"):
        post(small_pool, server.url())


def test_an_answer_announcing_more_than_the_cap_is_refused_before_it_is_read(serve, small_pool):
    server = serve(lambda request: [b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", b"x" * 1000, 2.0])
    with pytest.raises(http1.AnswerTooLarge, match="announces 2000000 bytes"):
        post(small_pool, server.url(), read_timeout=1.0)


def test_an_unannounced_answer_is_cut_at_the_cap(serve, small_pool):
    server = serve(lambda request: [b"HTTP/1.1 200 OK\r\n\r\n"] + [b"x" * 65536] * 40 + [CLOSE])
    with pytest.raises(http1.AnswerTooLarge, match="over 1048576 bytes"):
        post(small_pool, server.url())


def test_the_cap_is_an_upstream_error_for_answers_and_streams(serve, monkeypatch):
    monkeypatch.setattr(upstream, "_pool", http1.Pool(max_idle=4, max_answer_bytes=MIB))
    bomb = gzip_bomb(64)
    server = serve(lambda request: [answer(bomb, headers="Content-Encoding: gzip\r\n")])
    with pytest.raises(UpstreamError, match="^The upstream provider's answer is larger than this gateway accepts.$"):
        upstream.post(server.url(), b"{}", {}, read_timeout=2, stream=False)

    event = chunk(b'data: {"n": 1}\n\n')
    endless = serve(lambda request: [chunked()[:-5]] + [event * 4096] * 40)
    events = upstream.iter_sse_data(upstream.post(endless.url(), b"{}", {}, read_timeout=2, stream=True), 2.0)
    assert next(events) == b'{"n": 1}'
    with pytest.raises(UpstreamError, match="^The upstream provider's stream is larger than this gateway accepts.$"):
        list(events)
    upstream.pool().clear()


def test_a_gzipped_stream_is_decoded_as_it_arrives_and_capped(serve, small_pool):
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(b'data: {"n": 1}\n\n') + compressor.flush(zlib.Z_SYNC_FLUSH)
    server = serve(lambda request: [chunked(headers="Content-Encoding: gzip\r\n")[:-5], chunk(first), 0.2,
                                    chunk(gzip_bomb(64)[10:]), b"0\r\n\r\n"])
    events = upstream.iter_sse_data(post(small_pool, server.url(), stream=True), 2.0)
    assert next(events) == b'{"n": 1}'
    with pytest.raises(UpstreamError, match="stream is larger than this gateway accepts"):
        next(events)


def test_the_gzip_bomb_helper_makes_what_it_says():
    assert gzip.decompress(gzip_bomb(3)) == bytes(3 * MIB)
