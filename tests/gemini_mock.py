"""A mock of Google's Generative Language API (Gemini), over real HTTP on loopback.

`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and
`:batchEmbedContents`, in Google's wire format: camelCase JSON, streams as
`data: {GenerateContentResponse}` events separated by CRLF CRLF with no end marker (the
body ends), errors as `{"error": {"code", "message", "status", "details"}}`.

The key must come in `x-goog-api-key` (never `?key=`); a wrong one gets Google's answer to
a bad key: 400 INVALID_ARGUMENT with reason API_KEY_INVALID.

Answers by model:
- gemini-ok: "Hello from Gemini" (3 candidate tokens, 12 prompt tokens), STOP.
- gemini-tools: a signed functionCall get_weather({"city": "Paris"}), STOP (as Gemini says).
- gemini-thinking: a thought part, then "Hello from Gemini"; 112 prompt tokens of which 100
  cached, 3 candidate tokens and 20 thoughts tokens.
- gemini-max-tokens: "Hello from" then MAX_TOKENS.  gemini-safety: no content, SAFETY.
- gemini-blocked: no candidates, promptFeedback.blockReason SAFETY.
- gemini-bad-request: 400 INVALID_ARGUMENT.  gemini-rate-limited: 429 RESOURCE_EXHAUSTED
  with a RetryInfo of 7s.  gemini-server-error: 500 INTERNAL.
- gemini-slow: waits 3 s before answering.  gemini-cut: streams one event, then drops the
  connection; not streamed, it announces more body than it sends.
- gemini-error-event: streams one event, then an error event.
- any other model: 404 NOT_FOUND.
Embeddings (any known model): vectors of `outputDimensionality` (default 4) floats.
Every request is recorded in `.requests` as {"path", "headers" (lower-case), "body"}.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

API_KEY = "AIzaSy-gemini-upstream-SECRET-0123456789"
TOKENS = ["Hello", " from", " Gemini"]
MODELS = {"gemini-ok", "gemini-tools", "gemini-thinking", "gemini-max-tokens", "gemini-safety", "gemini-blocked",
          "gemini-bad-request", "gemini-rate-limited", "gemini-server-error", "gemini-slow", "gemini-cut",
          "gemini-error-event", "text-embedding-004"}
SIGNATURE = "CiQB0e2Kb3RoZXIgdGhvdWdodCBzaWduYXR1cmU="
FAILURES = {
    "gemini-bad-request": (400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature' (TYPE_FLOAT)"),
    "gemini-rate-limited": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "gemini-server-error": (500, "INTERNAL", "An internal error has occurred. Please retry or report."),
}


def _dumps(payload) -> bytes:
    return json.dumps(payload, separators=(",", ": ")).encode()  # Google's own spacing


def _usage(model: str, final: bool) -> dict:
    if model == "gemini-thinking":
        usage = {"promptTokenCount": 112, "candidatesTokenCount": 3, "totalTokenCount": 135,
                 "cachedContentTokenCount": 100, "thoughtsTokenCount": 20}
    else:
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15}
    if not final:  # before its last event, a stream counts only the prompt
        usage = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
    return usage


def _events(model: str) -> list[dict]:
    """The answer as the events of a stream; an unstreamed answer is them merged."""
    if model == "gemini-blocked":
        return [{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": _usage(model, True)}]
    if model == "gemini-safety":
        return [{"candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": _usage(model, True)}]
    if model == "gemini-tools":
        parts = [[{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE}]]
    elif model == "gemini-max-tokens":
        parts = [[{"text": token}] for token in TOKENS[:2]]
    else:
        parts = [[{"text": token}] for token in TOKENS]
    if model == "gemini-thinking":
        parts[0].insert(0, {"text": "**Weighing a greeting**", "thought": True})
    events = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        candidate = {"content": {"parts": part, "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "MAX_TOKENS" if model == "gemini-max-tokens" else "STOP"
        events.append({"candidates": [candidate], "usageMetadata": _usage(model, last),
                       "modelVersion": "gemini-2.5-flash", "responseId": "mockResponse1"})
    return events


def _merged(events: list[dict]) -> dict:
    answer = dict(events[-1])
    if "candidates" in answer:
        parts = [p for e in events for p in e["candidates"][0].get("content", {}).get("parts", ())]
        candidate = dict(answer["candidates"][0])
        if parts:
            candidate["content"] = {"parts": parts, "role": "model"}
        answer["candidates"] = [candidate]
    return answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle(self):
        # The gateway hangs up on slow answers and cut streams: routine here, not a traceback.
        try:
            super().handle()
        except ConnectionError:
            self.close_connection = True

    def _json(self, status: int, payload: dict):
        data = _dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, google_status: str, message: str, details: list | None = None):
        error = {"code": status, "message": message, "status": google_status}
        if details:
            error["details"] = details
        self._json(status, {"error": error})

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append({"path": self.path, "headers": headers, "body": body})
        url = urlsplit(self.path)
        model, _, method = url.path.removeprefix("/v1beta/models/").partition(":")
        if headers.get("x-goog-api-key") != API_KEY or "key=" in url.query:
            return self._error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])
        if model not in MODELS:
            return self._error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not "
                                                 "supported for generateContent.")
        if model in FAILURES:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}] \
                if model == "gemini-rate-limited" else None
            return self._error(*FAILURES[model], details)
        if model == "gemini-slow":
            time.sleep(3)
        if method == "batchEmbedContents":
            size = (body["requests"][0].get("outputDimensionality") or 4) if body.get("requests") else 4
            return self._json(200, {"embeddings": [{"values": [round(0.1 * (i + 1) + 0.01 * j, 4)
                                                               for j in range(size)]}
                                                   for i, _ in enumerate(body.get("requests") or ())]})
        if method == "generateContent":
            return self._answer(model)
        if method == "streamGenerateContent" and url.query == "alt=sse":
            try:
                return self._stream(model)
            except (BrokenPipeError, ConnectionResetError):
                return None
        return self._error(404, "NOT_FOUND", "The requested URL was not found on this server.")

    def _answer(self, model: str):
        if model == "gemini-cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"candidates": [{"content": {')
            self.wfile.flush()
            self.close_connection = True
            return None
        return self._json(200, _merged(_events(model)))

    def _stream(self, model: str):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, event in enumerate(_events(model)):
            self._chunk(b"data: " + _dumps(event) + b"\r\n\r\n")
            if model == "gemini-cut":
                self.close_connection = True
                return  # the connection drops with the chunked body unfinished
            if model == "gemini-error-event":
                error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
                self._chunk(b"data: " + _dumps(error) + b"\r\n\r\n")
                break
        self.wfile.write(b"0\r\n\r\n")


class GeminiMock:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.requests = []
        self.requests = self.server.requests
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1beta"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
