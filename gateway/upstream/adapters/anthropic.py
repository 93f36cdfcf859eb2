"""Anthropic's Messages API: behind the OpenAI chat format (complete, stream), and as
itself for the gateway's own Messages surface (relay_native, count_tokens_native)."""

from .. import calls as upstream
from ...parsing.encoding import dumps, loads
from ...api.errors import GatewayError, UpstreamError, UpstreamOverloaded
from .anthropic_format import StreamTranslator, from_anthropic, to_anthropic, usage_from_anthropic
from .base import Completion, ProviderAdapter

API_VERSION = "2023-06-01"
# Anthropic's error types, in OpenAI's words where OpenAI has one.
ERROR_TYPES = {"rate_limit_error": ("requests", "rate_limit_exceeded"),
               "not_found_error": ("invalid_request_error", "model_not_found"),
               "request_too_large": ("invalid_request_error", "request_too_large")}


# The caller's headers a relayed request takes along: the API version it was written for,
# and the betas (prompt caching variants, long context, tools) it turns on.
NATIVE_HEADERS = ("anthropic-version", "anthropic-beta")


class NativeEvent:
    """One event of an Anthropic stream relayed as it came: its type, its data's bytes,
    and the data parsed (the relay reads usage from it and relabels the model)."""

    __slots__ = ("kind", "data", "event")

    def __init__(self, kind: str, data: bytes, event: dict):
        self.kind, self.data, self.event = kind, data, event


def _headers(route, stream: bool, caller_headers: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION,
               "Accept": "text/event-stream" if stream else "application/json"}
    for name in NATIVE_HEADERS:
        if caller_headers and caller_headers.get(name):
            headers[name] = caller_headers[name]
    if stream:
        headers["Accept-Encoding"] = "identity"
    key = upstream.api_key_for(route)
    if key:
        headers["x-api-key"] = key
    return headers


def _error(resp, route, streamed: bool) -> GatewayError:
    error = upstream.error_from_response(resp, route.provider, streamed)
    if error.error_type in ERROR_TYPES:
        error.error_type, error.code = ERROR_TYPES[error.error_type]
    elif error.code == "upstream_rejected" and error.status_code < 500:
        error.code = "invalid_request"
    return error


def _malformed_event(route) -> UpstreamError:
    return UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")


class AnthropicAdapter(ProviderAdapter):
    def _post(self, route, chat):
        return self._send(route, "messages", dumps(to_anthropic(route, chat)), chat.stream, None)

    def _send(self, route, path: str, body: bytes, stream: bool, caller_headers: dict | None):
        resp = upstream.post(f"{route.base_url}/{path}", body, _headers(route, stream, caller_headers),
                             upstream.read_timeout(route), stream=stream)
        if resp.status != 200:
            raise _error(resp, route, streamed=stream)
        return resp

    def _answer(self, route, resp) -> dict:
        answer = upstream.json_body(resp, route.provider)
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed answer.")
        return answer

    def complete(self, route, chat) -> Completion:
        body, usage = from_anthropic(self._answer(route, self._post(route, chat)))
        return Completion(body=body, usage=usage)

    def stream(self, route, chat):
        translator = StreamTranslator()
        return (chunk for event in self._events(self._post(route, chat), route)
                for chunk in translator.translate(event.event))

    def relay_native(self, route, request, headers: dict):
        """A Messages request as its caller wrote it (gateway.parsing.messages_request),
        but for the upstream's model name: the answer in Anthropic's format, or its events."""
        body = dumps({**request.body, "model": route.upstream_model})
        resp = self._send(route, "messages", body, request.stream, headers)
        if request.stream:
            return self._events(resp, route)
        answer = self._answer(route, resp)
        return Completion(body=answer, usage=usage_from_anthropic(answer.get("usage") or {}))

    def count_tokens_native(self, route, body: dict, headers: dict) -> dict:
        """POST /v1/messages/count_tokens upstream: {"input_tokens": N}."""
        resp = self._send(route, "messages/count_tokens", dumps({**body, "model": route.upstream_model}), False,
                          headers)
        answer = upstream.json_body(resp, route.provider)
        count = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed answer.")
        return {"input_tokens": count}

    def _events(self, resp, route):
        """The stream's events, each as soon as it comes, up to message_stop; an error event
        or a stream that ends before it raises."""
        for data in upstream.iter_sse_data(resp, upstream.read_timeout(route)):
            try:
                event = loads(data)
            except ValueError:
                raise _malformed_event(route)
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise _malformed_event(route)
            kind = event["type"]
            if kind == "error":
                error = event.get("error") if isinstance(event.get("error"), dict) else {}
                message = upstream.scrub(str(error.get("message") or "unknown error"))
                failure = UpstreamOverloaded if error.get("type") == "overloaded_error" else UpstreamError
                raise failure(f"The upstream provider '{route.provider}' failed mid-stream: {message}")
            yield NativeEvent(kind, data, event)
            if kind == "message_stop":
                return
        raise UpstreamError(f"The upstream provider '{route.provider}' ended the stream without finishing it.")
