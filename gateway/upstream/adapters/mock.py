"""The built-in offline provider: answers by echoing the last user message.

It lets a fresh install, a load test or a customer's CI call the gateway without any
provider account, and it meters and bills like every other model.
"""

import hashlib
import re
import time
import uuid

from ...parsing.tokens import estimate_prompt_tokens, estimate_text_tokens, last_user_text
from .base import Completion, ProviderAdapter, Usage

_WORDS = re.compile(r"\s*\S+")


def _reply(chat) -> tuple[list[str], str]:
    text = last_user_text(chat.body["messages"]) or "(no user message to echo)"
    pieces = _WORDS.findall(text)
    if chat.max_tokens is not None and len(pieces) > chat.max_tokens:
        return pieces[: chat.max_tokens], "length"
    return pieces, "stop"


def _usage(chat, pieces: list[str]) -> Usage:
    return Usage(
        prompt_tokens=estimate_prompt_tokens(chat.body["messages"]),
        completion_tokens=sum(estimate_text_tokens(p) for p in pieces),
    )


EMBEDDING_DIMENSIONS = 8


def _vector(text: str) -> list[float]:
    # Deterministic and offline: the same text always gets the same unit-length vector.
    digest = hashlib.sha256(text.encode()).digest()
    raw = [b - 127.5 for b in digest[:EMBEDDING_DIMENSIONS]]
    norm = sum(x * x for x in raw) ** 0.5 or 1
    return [round(x / norm, 6) for x in raw]


class MockAdapter(ProviderAdapter):
    def embed(self, route, request) -> Completion:
        data = [{"object": "embedding", "index": i, "embedding": _vector(str(item))}
                for i, item in enumerate(request.inputs)]
        usage = Usage(prompt_tokens=request.prompt_estimate(), completion_tokens=0)
        body = {"object": "list", "data": data, "model": route.upstream_model,
                "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}}
        return Completion(body=body, usage=usage)

    def complete(self, route, chat) -> Completion:
        pieces, finish_reason = _reply(chat)
        usage = _usage(chat, pieces)
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": route.upstream_model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces)},
                "logprobs": None,
                "finish_reason": finish_reason,
            }],
            "usage": usage.as_openai(),
        }
        return Completion(body=body, usage=usage)

    def stream(self, route, chat):
        pieces, finish_reason = _reply(chat)
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": route.upstream_model,
        }
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for piece in pieces:
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}
        yield {**base, "choices": [], "usage": _usage(chat, pieces).as_openai()}
