"""The seam between the request path and an upstream protocol.

An adapter turns a checked ChatRequest into one upstream call and hands back OpenAI
shapes: a chat.completion body, or chat.completion.chunk dicts. The request path never
sees a protocol's own format, so adding a protocol is adding one module here.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from ..catalog import Route
from ..errors import InvalidRequest
from ..chat_request import ChatRequest


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # provider: the upstream counted; estimated: we counted; partial: the answer was cut
    basis: str = "provider"

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

    def stream(self, route: Route, chat: ChatRequest) -> Iterator[dict]:
        """Open the upstream stream and yield chat.completion.chunk dicts.

        Must raise GatewayError for failures before the first chunk (the caller then gets
        a plain error response) and during the stream (the caller gets an error event).
        Closing the iterator must release the upstream connection at once.
        """
        raise NotImplementedError
