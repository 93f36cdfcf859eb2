"""A fast mock OpenAI upstream for benchmarks: raw asyncio HTTP/1.1 with keep-alive.

It must cost far less CPU than what it measures, so it parses just enough HTTP. The
request's JSON picks the answer: "stream": true streams "bench_chunks" chunks (default 20)
"bench_delay_ms" apart (default 0); otherwise one chat.completion. Those two fields ride in
the body because the gateway passes unknown body fields upstream, but not caller headers.
A request to a path ending in /messages is answered in Anthropic's Messages format instead
(one message, or its event stream of 20 text deltas), for the anthropic-protocol benchmarks.

    python bench/fast_upstream.py PORT
"""

import asyncio
import json
import re
import sys

COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench"},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
}).encode()
CHUNK = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}\n\n'
FINISH = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'


def usage_chunk(n: int) -> bytes:
    return (b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench",'
            b'"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":%d,"total_tokens":%d}}\n\n' % (n, n + 8))


MESSAGE = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench",
    "content": [{"type": "text", "text": "Hello from the bench"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 8, "output_tokens": 4},
}).encode()


def _sse(kind: str, data: dict) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), json.dumps(data).encode())


MESSAGE_EVENTS = b"".join([
    _sse("message_start", {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 8, "output_tokens": 1}}}),
    _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    *[_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": "tok "}})] * 20,
    _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 20}}),
    _sse("message_stop", {"type": "message_stop"}),
])

_FIELD = re.compile(rb'"(bench_chunks|bench_delay_ms)"\s*:\s*(\d+)')


def _field(body: bytes, name: bytes, default: int) -> int:
    for key, value in _FIELD.findall(body):
        if key == name:
            return int(value)
    return default


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            stream = b'"stream":true' in body.replace(b" ", b"")
            if head.split(b" ", 2)[1].split(b"?")[0].endswith(b"/messages"):
                answer, kind = (MESSAGE_EVENTS, b"text/event-stream") if stream else (MESSAGE, b"application/json")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                             % (kind, len(answer), answer))
                await writer.drain()
                continue
            if not stream:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(COMPLETION), COMPLETION))
                await writer.drain()
                continue
            chunks = _field(body, b"bench_chunks", 20)
            delay = _field(body, b"bench_delay_ms", 0) / 1000
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(chunks):
                writer.write(chunked(CHUNK))
                if delay:
                    await writer.drain()
                    await asyncio.sleep(delay)
            writer.write(chunked(FINISH) + chunked(usage_chunk(chunks)) + chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int):
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
