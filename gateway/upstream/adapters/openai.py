"""OpenAI's chat protocol: DeepSeek, OpenAI, Groq, Together, vLLM, Ollama and the rest."""

import re
from urllib.parse import urlencode

from .. import calls as upstream
from ...parsing.encoding import dumps
from ...api.errors import UpstreamError
from .base import Completion, ProviderAdapter, RawChunk, usage_from_openai

# The members that make a stream chunk worth parsing. Searched in its bytes: a match inside
# a JSON string is impossible (its quotes would be escaped) or harmless (the chunk is then
# parsed for nothing).
_USAGE = re.compile(rb'"usage"\s*:\s*(?!null)')
_ERROR = re.compile(rb'"error"\s*:')
_FINISH_REASON = re.compile(rb'"finish_reason"\s*:\s*"')


def _headers(route, stream: bool) -> dict:
    # The provider's static headers first: the ones the exchange itself needs win.
    headers = {**dict(route.headers), "Content-Type": "application/json",
               "Accept": "text/event-stream" if stream else "application/json"}
    if stream:
        headers["Accept-Encoding"] = "identity"  # relay bytes as they come, undecoded
    key = upstream.api_key_for(route)
    if key and route.auth_header and route.auth_header.lower() != "authorization":
        headers[route.auth_header] = key  # e.g. Azure OpenAI's "api-key: <key>"
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _url(route, path: str) -> str:
    url = f"{route.base_url}/{path}"
    return f"{url}?{urlencode(route.query_params)}" if route.query_params else url


def _upstream_body(route, chat) -> dict:
    body = dict(chat.body)
    body["model"] = route.upstream_model
    if chat.stream:
        # Always ask for usage: billing must be exact whether or not the caller asked.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


def _post_for_json(route, path: str, body: dict, list_field: str) -> dict:
    """A non-streamed call whose answer must be a JSON object with a list in `list_field`."""
    resp = upstream.post(_url(route, path), dumps(body), _headers(route, stream=False),
                         upstream.read_timeout(route), stream=False)
    if resp.status != 200:
        raise upstream.error_from_response(resp, route.provider, streamed=False)
    answer = upstream.json_body(resp, route.provider)
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
        resp = upstream.post(_url(route, "chat/completions"), dumps(_upstream_body(route, chat)),
                             headers, timeout, stream=True)
        if resp.status != 200:
            raise upstream.error_from_response(resp, route.provider, streamed=True)
        return self._chunks(resp, route, timeout)

    def _chunks(self, resp, route, timeout):
        """The upstream's chunks as RawChunks, relayed without parsing, but for the first and
        those that say something the gateway must act on: usage (billed, so yielded as a
        dict), an error, and the finish that makes a stream without [DONE] complete."""
        finished, first, done = False, True, False
        for data in upstream.iter_sse_data(resp, timeout, last=b"[DONE]"):
            if data == b"[DONE]":
                done = True
                continue  # the end: iter_sse_data reads the rest of the body and stops
            if not (first or (b'"usage"' in data and _USAGE.search(data))
                    or (b'"error"' in data and _ERROR.search(data)) or (not finished and _FINISH_REASON.search(data))):
                yield RawChunk(data)
                continue
            first = False  # the first is always checked: until it is relayed, a bad upstream can be failed over
            try:
                chunk = RawChunk(data).parsed()
            except ValueError:
                raise UpstreamError(f"The upstream provider '{route.provider}' sent a malformed stream event.")
            if "error" in chunk:
                error = chunk["error"] if isinstance(chunk["error"], dict) else {}
                message = upstream.scrub(str(error.get("message") or "unknown error"))
                raise UpstreamError(f"The upstream provider '{route.provider}' failed mid-stream: {message}")
            finished = finished or any(
                isinstance(c, dict) and c.get("finish_reason") for c in chunk.get("choices") or ()
            )
            yield chunk if chunk.get("usage") is not None else RawChunk(data)
        if done or finished:
            return  # a server that omits [DONE] after finishing has still answered in full
        raise UpstreamError(f"The upstream provider '{route.provider}' ended the stream without finishing it.")
