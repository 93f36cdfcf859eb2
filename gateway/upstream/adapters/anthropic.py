"""Anthropic's Messages API behind the OpenAI chat format."""

from .. import calls as upstream
from ...parsing.encoding import dumps, loads
from ...api.errors import GatewayError, UpstreamError
from .anthropic_format import StreamTranslator, from_anthropic, to_anthropic
from .base import Completion, ProviderAdapter

API_VERSION = "2023-06-01"
# Anthropic's error types, in OpenAI's words where OpenAI has one.
ERROR_TYPES = {"rate_limit_error": ("requests", "rate_limit_exceeded"),
               "not_found_error": ("invalid_request_error", "model_not_found"),
               "request_too_large": ("invalid_request_error", "request_too_large")}


def _headers(route, stream: bool) -> dict:
    headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION,
               "Accept": "text/event-stream" if stream else "application/json"}
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


class AnthropicAdapter(ProviderAdapter):
    def _post(self, route, chat):
        resp = upstream.post(f"{route.base_url}/messages", dumps(to_anthropic(route, chat)),
                             _headers(route, chat.stream), upstream.read_timeout(route), stream=chat.stream)
        if resp.status != 200:
            raise _error(resp, route, streamed=chat.stream)
        return resp

    def complete(self, route, chat) -> Completion:
        answer = upstream.json_body(self._post(route, chat), route.provider)
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
            raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed answer.")
        body, usage = from_anthropic(answer)
        return Completion(body=body, usage=usage)

    def stream(self, route, chat):
        return self._chunks(self._post(route, chat), route)

    def _chunks(self, resp, route):
        translator = StreamTranslator()
        for data in upstream.iter_sse_data(resp, upstream.read_timeout(route)):
            try:
                event = loads(data)
            except ValueError:
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if not isinstance(event, dict):
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if event.get("type") == "error":
                error = event.get("error") if isinstance(event.get("error"), dict) else {}
                message = upstream.scrub(str(error.get("message") or "unknown error"))
                raise UpstreamError(f"The upstream provider '{route.provider}' failed mid-stream: {message}")
            yield from translator.translate(event)
            if event.get("type") == "message_stop":
                return
        raise UpstreamError(f"The upstream provider '{route.provider}' ended the stream without finishing it.")
