"""POST /v1/embeddings: OpenAI's embedding list, billed on input tokens."""

from ..upstream.adapters import Completion, Usage
from ..parsing.embeddings import parse_embedding_request
from . import Surface, openai_answer


def encode_answer(exchange, result: Completion) -> tuple[dict, Usage]:
    usage = result.usage or Usage(exchange.request.prompt_estimate(), 0, basis="estimated")
    return openai_answer(result.body, usage, exchange.caller_model), usage


EMBEDDINGS = Surface(name="embeddings", parse=parse_embedding_request, encode_answer=encode_answer)
