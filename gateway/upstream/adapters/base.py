"""The seam between the request path and an upstream protocol.

An adapter turns a checked ChatRequest into one upstream call and hands back OpenAI
shapes: a chat.completion body, or chat.completion.chunks (dicts, or RawChunk bytes when
the upstream already speaks OpenAI's format). The request path never sees a protocol's own
format, so adding a protocol is adding one module here.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ...routing.catalog import Route
from ...api.errors import InvalidRequest
from ...parsing.chat_request import ChatRequest
from ...parsing.encoding import loads


@dataclass
class Usage:
    """Token counts in OpenAI's convention: prompt_tokens counts every input token, those
    read from a prompt cache (cached_tokens) and those written to one (cache_write_tokens,
    Anthropic's cache creation) included; completion_tokens include reasoning_tokens."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # provider: the upstream counted; estimated: we counted; partial: the answer was cut
    basis: str = "provider"
    cache_write_tokens: int = 0

    def as_openai(self) -> dict:
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return usage


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage_from_openai(data) -> Usage | None:
    """Usage as an OpenAI-protocol upstream reports it, or None when it is missing or bogus."""
    if not isinstance(data, dict):
        return None
    prompt, completion = _count(data.get("prompt_tokens")), _count(data.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=_detail(data, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_detail(data, "completion_tokens_details", "reasoning_tokens"),
    )


def _detail(usage: dict, group: str, name: str) -> int:
    details = usage.get(group)
    return (_count(details.get(name)) or 0) if isinstance(details, dict) else 0


@dataclass
class Completion:
    body: dict  # an OpenAI chat.completion object
    usage: Usage | None  # None when the upstream did not say


class ProviderAdapter:
    def complete(self, route: Route, chat: ChatRequest) -> Completion:
        raise NotImplementedError

    def embed(self, route: Route, request) -> Completion:
        """An OpenAI embedding list for an EmbeddingRequest; usage counts prompt tokens."""
        raise InvalidRequest(f"The model '{route.public_id}' does not make embeddings.",
                             code="model_not_supported", param="model")

    def stream(self, route: Route, chat: ChatRequest) -> Iterator["dict | RawChunk"]:
        """Open the upstream stream and yield chat.completion.chunks: dicts, or RawChunks
        for chunks already in OpenAI's format (a chunk carrying usage must be a dict: the
        relay adds its cost).

        Must raise GatewayError for failures before the first chunk (the caller then gets
        a plain error response) and during the stream (the caller gets an error event).
        Closing the iterator must release the upstream connection at once.
        """
        raise NotImplementedError


    def relay_native(self, route: Route, request, headers: dict):
        """The caller's own request, in this protocol's format, relayed as it came but for
        its model (a surface whose native_protocol is this one asks for it), with the
        caller's `headers` meant for this protocol: a Completion whose body is in this
        protocol's format, or, for a stream, its events. Errors as stream() says."""
        raise InvalidRequest(f"The model '{route.public_id}' cannot take this request as it is.",
                             code="model_not_supported", param="model")


# The top-level "model" member, found only in the part of a chunk before "choices", where
# an upstream writes its metadata (id, object, created, model, system_fingerprint).
_MODEL_MEMBER = re.compile(rb'"model"\s*:\s*("[^"\\]*")\s*,')
_CHOICES_KEY = re.compile(rb'"choices"\s*:')


class RawChunk:
    """A chat.completion.chunk as an OpenAI-protocol upstream sent it: its JSON bytes.

    Relayed as they are, but for the top-level "model" (see model_span), and parsed only
    when something needs its content; most chunks of a stream never become a dict. So a
    chunk of the usual shape is not checked to be valid JSON: an upstream that breaks one
    mid-stream has it reach the caller as it sent it.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def parsed(self) -> dict:
        """The chunk as a dict; ValueError when it is not a JSON object."""
        chunk = loads(self.data)
        if not isinstance(chunk, dict):
            raise ValueError("a stream event that is not a JSON object")
        return chunk

    def model_span(self) -> tuple[int, int] | None:
        """Where the top-level "model" value (a JSON string, quotes included) lies in the
        chunk's bytes, or None when the chunk is not shaped as upstreams write it and must
        be parsed instead.

        The usual shape is {"id":..., "object":..., "created":..., "model":"...",
        "choices":[...], ...}. Its leading part is trusted only if it holds nothing but
        flat top-level members: no backslash (so every quote delimits a string), one brace
        (the object's own) and no bracket. Then "choices" there is a top-level key, and a
        "model" key before it is the top-level one; text inside "choices" (which may well
        say "model") is never looked at.
        """
        data = self.data
        end = data.find(b'"choices"')
        if end <= 0 or data[0] != 0x7B:  # "{"
            return None
        head = data[:end]
        if (b"\\" in head or head.count(b"{") != 1 or b"}" in head or b"[" in head
                or head.count(b'"') % 2 or head.count(b'"model"') != 1 or not _CHOICES_KEY.match(data, end)):
            return None
        member = _MODEL_MEMBER.search(head)
        return member.span(1) if member else None
