"""A mock OpenAI-protocol upstream provider served over real HTTP on loopback.

Tests point the gateway (or an SDK) at ``MockUpstream().base_url`` and get real
sockets, real keep-alive and real chunked SSE streams, so relaying, timeouts and
disconnects are exercised exactly as against a live provider.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings``,
``GET /v1/models``; anything else answers 404 with an OpenAI error envelope.

Chat behaviour is chosen by the request's ``model`` (the "scenario"); unknown
models behave as "ok":

- ``ok``: "Hello from upstream" as tokens ["Hello", " from", " upstream"];
  usage 8 prompt / 3 completion / 11 total. Streams end with a usage chunk
  (only when ``stream_options.include_usage`` is true) and ``data: [DONE]``.
- ``echo-request``: the content is ``json.dumps`` of the received body
  (a single token when streaming).
- ``fail-500`` / ``fail-429`` (with ``retry-after: 1``) / ``fail-400`` /
  ``fail-401``: that HTTP status with an OpenAI error envelope.
- ``slow``: sleeps ``x-mock-delay`` seconds (default 3.0) before anything is
  sent, then answers like "ok".
- ``slow-stream``: sends headers and the role chunk at once, sleeps
  ``x-mock-delay`` seconds (default 3.0), then sends the rest.
- ``cut-mid-stream``: streams the role chunk and one token, then drops the
  connection; non-streaming announces Content-Length 1000, sends a few bytes
  and drops the connection.
- ``bad-json``: invalid JSON body; streams a role chunk then ``data: {not json}``
  and ends the chunked body cleanly.
- ``not-an-object``: 200 with ``[1, 2, 3]``.
- ``no-usage``: like "ok" but never reports usage.
- ``error-event``: streams the role chunk, one token, an ``{"error": ...}``
  event, then ends the body cleanly without ``[DONE]``.
- ``long-stream``: streams ``x-mock-chunks`` tokens (default 100) "tok0 ",
  "tok1 ", ...; usage 8 prompt / N completion.
- ``fail-400-poison``: 400 whose ``code`` is 100 characters and holds NUL
  (what the ledger's 64-character column cannot take as sent).
- ``huge-usage``: like "ok" but reports 2**40 prompt and 2**40 completion
  tokens (beyond a 32-bit column).
- ``reasoning``: like "ok" with ``prompt_tokens_details.cached_tokens = 4`` and
  ``completion_tokens_details.reasoning_tokens = 2`` in usage.
- ``honours-max-tokens``: answers exactly ``max_tokens`` completion tokens (the field an
  older upstream honours, whatever ``max_completion_tokens`` says; 1000 when absent).
- ``overruns``: reports 100 completion tokens more than ``max_tokens`` allowed.
- ``echoes-key``: 400 whose message quotes the bearer key it was sent, as some
  providers do.

A base URL of ``.../down-<status>/v1`` answers that status to everything: a
deployment that is down, for failover tests.

Every request is recorded in ``MockUpstream.requests`` as
``{"path", "headers" (lower-case names), "body" (parsed JSON or None)}``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

TOKENS = ["Hello", " from", " upstream"]
PROMPT_TOKENS = 8
DEFAULT_DELAY = 3.0
DEFAULT_CHUNKS = 100
POISON_CODE = "unusual\x00" + "x" * 92
HUGE_TOKENS = 2**40

# status, envelope fields, extra headers
FAILURES = {
    "fail-500": (500, {"message": "internal upstream failure", "type": "server_error",
                       "param": None, "code": None}, {}),
    "fail-429": (429, {"message": "Rate limit reached for requests", "type": "requests",
                       "param": None, "code": "rate_limit_exceeded"}, {"retry-after": "1"}),
    "fail-400": (400, {"message": "Invalid 'temperature': must be <= 2.",
                       "type": "invalid_request_error", "param": "temperature",
                       "code": "invalid_value"}, {}),
    "fail-400-poison": (400, {"message": "Rejected by an unusual upstream.",
                              "type": "invalid_request_error", "param": None,
                              "code": POISON_CODE}, {}),
    "fail-401": (401, {"message": "Incorrect API key provided: sk-upstr***********cret.",
                       "type": "invalid_request_error", "param": None,
                       "code": "invalid_api_key"}, {}),
}


class _Disconnect(Exception):
    """Raised by a scenario to drop the connection without finishing the response."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # hundreds of gateway connections may arrive at once
    mock: MockUpstream


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses
    server: _Server

    def log_message(self, format, *args):
        pass

    def handle(self):
        # Clients that hang up mid-response (timeouts, cancelled streams) are
        # routine in the gateway's tests, not errors worth a traceback.
        try:
            super().handle()
        except (ConnectionError, _Disconnect):
            self.close_connection = True

    # -- request plumbing -------------------------------------------------

    def _read_body(self) -> bytes:
        # The body must be consumed fully, or the next request on this
        # keep-alive connection would be parsed from its leftovers; a gateway
        # relaying a streamed upload may send it chunked.
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return data
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _dispatch(self, method: str):
        raw = self._read_body()
        try:
            body, parsed = (json.loads(raw) if raw else None), True
        except ValueError:
            body, parsed = None, False
        self.server.mock._record({
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        })
        if not parsed:
            return self._send_error(400, "We could not parse the JSON body of your request.",
                                    "invalid_request_error")
        path = urlsplit(self.path).path.rstrip("/")
        if path.startswith("/down-"):
            # A deployment that is down whatever it is asked: base_url .../down-503/v1
            status = int(path.split("/")[1].removeprefix("down-"))
            return self._send_error(status, "this deployment is down", "server_error")
        route = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
        }.get((method, path))
        if route is None:
            return self._send_error(404, f"Unknown request URL: {method} {path}.",
                                    "invalid_request_error", code="unknown_url")
        route(body)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _header_number(self, name: str, default: float) -> float:
        try:
            return float(self.headers.get(name, default))
        except ValueError:
            return default

    # -- response helpers -------------------------------------------------

    def _send_json(self, status: int, payload, headers: dict | None = None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status, message, type_, param=None, code=None, headers=None):
        envelope = {"message": message, "type": type_, "param": param, "code": code}
        self._send_json(status, {"error": envelope}, headers)

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _write_chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, payload):
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(f"data: {data}\n\n".encode())

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- endpoints --------------------------------------------------------

    def _chat(self, body):
        if not isinstance(body, dict):
            return self._send_error(400, "The request body must be a JSON object.",
                                    "invalid_request_error")
        scenario = body.get("model")
        if scenario in FAILURES:
            status, envelope, headers = FAILURES[scenario]
            return self._send_json(status, {"error": envelope}, headers)
        if scenario == "not-an-object":
            return self._send_json(200, b"[1, 2, 3]")
        if scenario == "echoes-key":
            key = self.headers.get("authorization", "").removeprefix("Bearer ")
            return self._send_error(400, f"Invalid API key format for this model: {key}", "invalid_request_error",
                                    code="invalid_api_key_format")
        if scenario == "slow":
            time.sleep(self._header_number("x-mock-delay", DEFAULT_DELAY))

        tokens = TOKENS
        if scenario == "echo-request":
            tokens = [json.dumps(body)]
        elif scenario == "long-stream":
            count = int(self._header_number("x-mock-chunks", DEFAULT_CHUNKS))
            tokens = [f"tok{i} " for i in range(count)]
        elif scenario in ("honours-max-tokens", "overruns"):
            count = body.get("max_tokens") or 1000
            tokens = ["tok "] * (count + (100 if scenario == "overruns" else 0))
        usage = None if scenario == "no-usage" else _usage(scenario, len(tokens))
        completion_id = f"chatcmpl-mock{uuid.uuid4().hex[:20]}"
        model = body.get("model")

        if body.get("stream"):
            return self._chat_stream(body, scenario, tokens, usage, completion_id, model)
        if scenario == "bad-json":
            return self._send_json(200, b'{"id": "x", "choices": [')
        if scenario == "cut-mid-stream":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"id": "chatcmpl-mock", "obj')
            self.wfile.flush()
            raise _Disconnect
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "".join(tokens)},
                "finish_reason": "stop",
                "logprobs": None,
            }],
        }
        if usage is not None:
            completion["usage"] = usage
        self._send_json(200, completion)

    def _chat_stream(self, body, scenario, tokens, usage, completion_id, model):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        created = int(time.time())

        def chunk(delta, finish_reason=None):
            payload = {
                "id": completion_id, "object": "chat.completion.chunk",
                "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish_reason}],
            }
            if include_usage:  # OpenAI sends an explicit null until the usage chunk
                payload["usage"] = None
            self._event(payload)

        self._start_stream()
        chunk({"role": "assistant", "content": ""})
        if scenario == "bad-json":
            self._event("{not json}")
            return self._end_stream()
        if scenario == "slow-stream":
            time.sleep(self._header_number("x-mock-delay", DEFAULT_DELAY))
        if scenario in ("cut-mid-stream", "error-event"):
            chunk({"content": tokens[0]})
            if scenario == "cut-mid-stream":
                raise _Disconnect
            self._event({"error": {"message": "overloaded mid-stream",
                                   "type": "server_error", "code": None}})
            return self._end_stream()
        for token in tokens:
            chunk({"content": token})
        chunk({}, finish_reason="stop")
        if include_usage and usage is not None:
            self._event({"id": completion_id, "object": "chat.completion.chunk",
                         "created": created, "model": model, "choices": [],
                         "usage": usage})
        self._event("[DONE]")
        self._end_stream()

    def _embeddings(self, body):
        raw = body.get("input") if isinstance(body, dict) else None
        if raw is None or raw == []:
            return self._send_error(400, "'input' is a required property",
                                    "invalid_request_error", param="input")
        # A list of ints is one pre-tokenized input, not several inputs.
        single = isinstance(raw, str) or isinstance(raw[0], int)
        inputs = [raw] if single else list(raw)
        tokens = 5 * len(inputs)
        self._send_json(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i in range(len(inputs))],
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    def _models(self, body):
        self._send_json(200, {"object": "list", "data": [
            {"id": "ok", "object": "model", "created": 0, "owned_by": "mock"}]})


def _usage(scenario, completion_tokens: int) -> dict:
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion_tokens,
        "total_tokens": PROMPT_TOKENS + completion_tokens,
    }
    if scenario == "huge-usage":
        usage = {"prompt_tokens": HUGE_TOKENS, "completion_tokens": HUGE_TOKENS,
                 "total_tokens": 2 * HUGE_TOKENS}
    if scenario == "reasoning":
        usage["prompt_tokens_details"] = {"cached_tokens": 4}
        usage["completion_tokens_details"] = {"reasoning_tokens": 2}
    return usage


class MockUpstream:
    """A loopback OpenAI-compatible server; see the module docstring for scenarios."""

    def __init__(self):
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> MockUpstream:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.mock = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"mock-upstream-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()  # in place, so references held by tests stay valid

    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
