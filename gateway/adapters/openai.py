"""OpenAI's chat protocol: DeepSeek, OpenAI, Groq, Together, vLLM, Ollama and the rest."""

import json

from .. import upstream
from ..errors import UpstreamError
from .base import Completion, ProviderAdapter, usage_from_openai


def _headers(route, stream: bool) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    if stream:
        headers["Accept-Encoding"] = "identity"  # relay bytes as they come, undecoded
    key = upstream.api_key_for(route)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _upstream_body(route, chat) -> dict:
    body = dict(chat.body)
    body["model"] = route.upstream_model
    if chat.stream:
        # Always ask for usage: billing must be exact whether or not the caller asked.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


def _post_for_json(route, path: str, body: dict, list_field: str) -> dict:
    """A non-streamed call whose answer must be a JSON object with a list in `list_field`."""
    resp = upstream.post(f"{route.base_url}/{path}", body, _headers(route, stream=False),
                         upstream.read_timeout(route), stream=False)
    if resp.status_code != 200:
        raise upstream.error_from_response(resp, route.provider, streamed=False)
    try:
        answer = resp.json()
    except ValueError:
        raise UpstreamError(f"The upstream provider '{route.provider}' sent an answer that is not JSON.")
    if not isinstance(answer, dict) or not isinstance(answer.get(list_field), list):
        raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed answer.")
    return answer


class OpenAIAdapter(ProviderAdapter):
    def complete(self, route, chat) -> Completion:
        body = _post_for_json(route, "chat/completions", _upstream_body(route, chat), "choices")
        return Completion(body=body, usage=usage_from_openai(body.get("usage")))

    def embed(self, route, request) -> Completion:
        answer = _post_for_json(route, "embeddings", {**request.body, "model": route.upstream_model}, "data")
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        return Completion(body=answer, usage=usage_from_openai({**usage, "completion_tokens": 0}))

    def stream(self, route, chat):
        headers = _headers(route, stream=True)
        timeout = upstream.read_timeout(route)
        resp = upstream.post(f"{route.base_url}/chat/completions", _upstream_body(route, chat), headers,
                             timeout, stream=True)
        if resp.status_code != 200:
            raise upstream.error_from_response(resp, route.provider, streamed=True)
        return self._chunks(resp, route, timeout)

    def _chunks(self, resp, route, timeout):
        finished = False
        for data in upstream.iter_sse_data(resp, timeout):
            if data == b"[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if not isinstance(chunk, dict):
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if "error" in chunk:
                error = chunk["error"] if isinstance(chunk["error"], dict) else {}
                message = upstream.scrub(str(error.get("message") or "unknown error"))
                raise UpstreamError(f"The upstream provider '{route.provider}' failed mid-stream: {message}")
            finished = finished or any(
                isinstance(c, dict) and c.get("finish_reason") for c in chunk.get("choices") or ()
            )
            yield chunk
        if finished:
            return  # a server that omits [DONE] after finishing has still answered in full
        raise UpstreamError(f"The upstream provider '{route.provider}' ended the stream without finishing it.")
