"""A mock Anthropic Messages API upstream, over real HTTP on loopback.

`POST /v1/messages` answers by the request's `model`:
- claude-ok: text "Hello from Claude" (3 output tokens, 12 input tokens); streams as
  message_start / content_block_* / message_delta / message_stop events.
- claude-tools: a tool_use block calling get_weather({"city": "Paris"}), stop_reason tool_use.
- claude-cached: like ok, with 100 cache-read and 10 cache-creation input tokens.
- claude-overloaded: HTTP 529 overloaded_error.  claude-bad-request: HTTP 400.
- claude-error-event: streams one text delta, then an error event.
- claude-cut: streams one text delta, then drops the connection; not streamed, it
  announces more body than it sends.  claude-slow: waits 3 s before answering.
- claude-server-error: HTTP 500 api_error.
`POST /v1/messages/count_tokens` answers {"input_tokens": 42} for any model.
Every request is recorded in `.requests` as {"path", "headers", "body", "raw"} (raw: the
body's bytes as they came).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKENS = ["Hello", " from", " Claude"]


def _usage(model: str) -> dict:
    usage = {"input_tokens": 12, "output_tokens": 3}
    if model == "claude-cached":
        usage.update(cache_read_input_tokens=100, cache_creation_input_tokens=10)
    return usage


def _content(model: str) -> list[dict]:
    if model == "claude-tools":
        return [{"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]
    return [{"type": "text", "text": "".join(TOKENS)}]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _event(self, name: str, payload: dict):
        data = f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        self.server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body, "raw": raw})
        model = body.get("model", "")
        if self.path == "/v1/messages/count_tokens":
            return self._json(200, {"input_tokens": 42})
        if self.path != "/v1/messages":
            return self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "no route"}})
        if model == "claude-slow":
            time.sleep(3)
        if model == "claude-server-error":
            return self._json(500, {"type": "error", "error": {"type": "api_error", "message": "Internal"}})
        if model == "claude-cut" and not body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"id": "msg_1", "type"')
            self.wfile.flush()
            self.close_connection = True
            return
        if model == "claude-overloaded":
            return self._json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        if model == "claude-bad-request":
            return self._json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                               "message": "max_tokens: must be positive"}})
        if not body.get("stream"):
            stop = "tool_use" if model == "claude-tools" else "end_turn"
            return self._json(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                                    "content": _content(model), "stop_reason": stop, "usage": _usage(model)})
        try:
            self._stream(model)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _stream(self, model: str):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        usage = _usage(model)
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"} | {"output_tokens": 1}
        self._event("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "usage": start_usage}})
        self._event("ping", {"type": "ping"})
        if model == "claude-tools":
            self._event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}})
            for part in ['{"city": ', '"Paris"}']:
                self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                    "delta": {"type": "input_json_delta", "partial_json": part}})
            stop = "tool_use"
        else:
            self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}})
            for token in TOKENS:
                self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                    "delta": {"type": "text_delta", "text": token}})
                if model == "claude-error-event":
                    self._event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                     "message": "Overloaded"}})
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if model == "claude-cut":
                    self.close_connection = True
                    return  # the connection drops mid-body
            stop = "end_turn"
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                      "usage": {"output_tokens": usage["output_tokens"]}})
        self._event("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")


class AnthropicMock:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.requests = []
        self.requests = self.server.requests
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
