"""Google's Generative Language API (Gemini) behind the OpenAI chat and embedding formats."""

import base64
import math
import re
import struct
from urllib.parse import quote

from .. import http1, calls as upstream
from ...parsing.encoding import dumps, loads
from ...api.errors import GatewayError, InvalidRequest, UpstreamError
from .base import Completion, ProviderAdapter
from .gemini_format import StreamTranslator, from_gemini, to_gemini

# Google's canonical error statuses, in OpenAI's words where OpenAI has them.
ERROR_STATUSES = {"RESOURCE_EXHAUSTED": ("requests", "rate_limit_exceeded"),
                  "NOT_FOUND": ("invalid_request_error", "model_not_found")}
# Google answers a bad key with 400 INVALID_ARGUMENT; it is the gateway's key, not the caller's.
CREDENTIAL_REASONS = {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")
EMBEDDING_FIELDS = {"model", "input", "dimensions", "encoding_format", "user"}


def _url(route, method: str) -> str:
    model = route.upstream_model.removeprefix("models/")
    return f"{route.base_url}/models/{quote(model, safe='')}:{method}"


def _headers(route, stream: bool) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    if stream:
        headers["Accept-Encoding"] = "identity"  # parsed as it arrives, so undecoded
    key = upstream.api_key_for(route)
    if key:
        headers["x-goog-api-key"] = key  # never in the URL, where logs would keep it
    return headers


def _google_error(data) -> dict:
    try:
        payload = loads(data) if data else {}
    except ValueError:
        return {}
    if isinstance(payload, list) and payload:  # the array framing of a stream without alt=sse
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: dict, kind: str) -> list[dict]:
    return [d for d in error.get("details") or () if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def _error(resp, route, streamed: bool) -> GatewayError:
    if streamed:  # the body is still on the wire: read only what an error needs
        try:
            resp.data = resp.read(upstream.MAX_ERROR_BODY_BYTES)
        except (http1.ProtocolError, OSError, ValueError):
            resp.data = b""
        finally:
            resp.close()
    google = _google_error(resp.data)
    if any(d.get("reason") in CREDENTIAL_REASONS for d in _details(google, "ErrorInfo")):
        return UpstreamError(f"The upstream provider '{route.provider}' refused the gateway's credentials or account.")
    error = upstream.error_from_response(resp, route.provider, streamed=False)
    if error.status_code < 500 and error.code == "upstream_rejected":
        error.error_type, error.code = ERROR_STATUSES.get(google.get("status"), (error.error_type, "invalid_request"))
    for retry in _details(google, "RetryInfo"):
        delay = _SECONDS.match(str(retry.get("retryDelay") or ""))
        if delay and error.status_code == 429:
            error.headers = {**error.headers, "retry-after": str(math.ceil(float(delay.group(1))))}
    return error


def _post(route, method: str, body: dict, stream: bool):
    url = _url(route, method) + ("?alt=sse" if stream else "")
    resp = upstream.post(url, dumps(body), _headers(route, stream), upstream.read_timeout(route), stream=stream)
    if resp.status != 200:
        raise _error(resp, route, streamed=stream)
    return resp


def _malformed(route) -> UpstreamError:
    return UpstreamError(f"The upstream provider '{route.provider}' sent a malformed answer.")


def _embedding_request(route, request) -> dict:
    body = request.body
    for name, value in body.items():
        if value is not None and name not in EMBEDDING_FIELDS:
            raise InvalidRequest(f"'{name}' is not supported by this model's provider (Gemini).",
                                 code="unsupported_parameter", param=name)
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequest("'encoding_format' must be float or base64.", code="invalid_value",
                             param="encoding_format")
    if any(not isinstance(text, str) for text in request.inputs):
        raise InvalidRequest("This model embeds text, not token ids.", code="invalid_value", param="input")
    model = f"models/{route.upstream_model.removeprefix('models/')}"
    each = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") is not None else {}
    return {"requests": [{"model": model, "content": {"parts": [{"text": text}]}, **each} for text in request.inputs]}


def _embedding(values: list, base64_wanted: bool):
    # OpenAI's base64 form: the vector's little-endian float32 bytes.
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode() if base64_wanted else values


class GeminiAdapter(ProviderAdapter):
    def complete(self, route, chat) -> Completion:
        answer = upstream.json_body(_post(route, "generateContent", to_gemini(route, chat), stream=False),
                                    route.provider)
        if not isinstance(answer, dict) or not isinstance(answer.get("candidates", []), list):
            raise _malformed(route)
        body, usage = from_gemini(answer, route.upstream_model)
        return Completion(body=body, usage=usage)

    def embed(self, route, request) -> Completion:
        answer = upstream.json_body(_post(route, "batchEmbedContents", _embedding_request(route, request),
                                          stream=False), route.provider)
        embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs):
            raise _malformed(route)
        base64_wanted = request.body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(embeddings):
            values = item.get("values") if isinstance(item, dict) else None
            if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
                raise _malformed(route)
            data.append({"object": "embedding", "index": i, "embedding": _embedding(values, base64_wanted)})
        # Gemini does not count embedding tokens: usage None has the gateway estimate them.
        return Completion(body={"object": "list", "data": data, "model": route.upstream_model}, usage=None)

    def stream(self, route, chat):
        return self._chunks(_post(route, "streamGenerateContent", to_gemini(route, chat), stream=True), route)

    def _chunks(self, resp, route):
        translator = StreamTranslator(route.upstream_model)
        for data in upstream.iter_sse_data(resp, upstream.read_timeout(route)):
            try:
                event = loads(data)
            except ValueError:
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if not isinstance(event, dict):
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if "error" in event:
                error = event["error"] if isinstance(event["error"], dict) else {}
                message = upstream.scrub(str(error.get("message") or "unknown error"))
                raise UpstreamError(f"The upstream provider '{route.provider}' failed mid-stream: {message}")
            yield from translator.translate(event)
        # The body's end is the stream's end; only a finishReason before it makes it whole.
        if translator.finish_reason is None:
            raise UpstreamError(f"The upstream provider '{route.provider}' ended the stream without finishing it.")
        yield from translator.end()
