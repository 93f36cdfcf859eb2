"""API surfaces: how one endpoint's callers speak.

A surface is a parser and an encoder over the gateway's own request and answer shapes
(ChatRequest or EmbeddingRequest in; the upstream adapters' OpenAI-shaped answers out).
Everything between, from routing to settlement, is gateway.pipeline's and the same for
every surface. A new surface (OpenAI's Responses API, Anthropic's Messages API) is one
module here that builds a `Surface`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..api.errors import openai_error
from ..upstream.adapters import Completion, Usage


@dataclass(frozen=True)
class Surface:
    name: str
    # The caller's JSON body -> a checked request (GatewayError for a bad one).
    parse: Callable[[dict], object]
    # (exchange, the upstream's whole answer) -> (the caller's body, the usage to charge).
    encode_answer: Callable[[object, Completion], tuple[dict, Usage]]
    # (exchange, first chunk, the rest) -> the stream's bytes, closable; None: never streams.
    encode_stream: Callable[[object, object, object], Iterable[bytes]] | None = None
    # How its errors are said (gateway.api.errors: openai_error or anthropic_error).
    error_encoding: Callable = openai_error
    # The upstream protocol that speaks this surface's own format, if one does: a route of
    # that protocol gets the caller's body relayed (its adapter's relay_native) rather
    # than translated, with these caller headers (lower-case names) passed on.
    native_protocol: str | None = None
    native_headers: tuple[str, ...] = ()

    def relays_natively(self, route) -> bool:
        return route.protocol == self.native_protocol


def openai_answer(body: dict, usage: Usage, caller_model: str) -> dict:
    """An OpenAI-shaped answer as the caller gets it: its own model name, and the usage
    the gateway charges (the upstream's own usage object when that is what is charged)."""
    if not isinstance(body.get("usage"), dict) or usage.basis != "provider":
        body["usage"] = usage.as_openai()
    body["model"] = caller_model
    return body
