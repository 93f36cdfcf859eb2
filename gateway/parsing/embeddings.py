"""POST /v1/embeddings: OpenAI's embedding list, billed on input tokens."""

from dataclasses import dataclass

from ..api.errors import InvalidRequest
from .tokens import estimate_text_tokens


@dataclass
class EmbeddingRequest:
    model: str
    body: dict
    inputs: list  # strings, or lists of token ids
    stream: bool = False  # an embedding list is never streamed

    def prompt_bound(self, context_window: int | None) -> int:
        # A token is at least one byte of text; token-id inputs count themselves.
        return sum(len(i.encode()) if isinstance(i, str) else len(i) for i in self.inputs) or 1

    def output_bound(self, max_output_tokens: int | None) -> int:
        return 0

    def prompt_estimate(self) -> int:
        return sum(estimate_text_tokens(i) if isinstance(i, str) else len(i) for i in self.inputs)

    def for_route(self, route) -> "EmbeddingRequest":
        return self  # nothing to cap: an embedding's size is the model's


def _is_tokens(value) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def parse_embedding_request(body: dict) -> EmbeddingRequest:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", code="missing_required_parameter", param="model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("Invalid type for 'model': expected a string such as 'openai:text-embedding-3-small'.",
                             code="invalid_type", param="model")
    value = body.get("input")
    if value is None:
        raise InvalidRequest("Missing required parameter: 'input'.", code="missing_required_parameter", param="input")
    if isinstance(value, str) or _is_tokens(value):
        inputs = [value]
    elif isinstance(value, list) and value and all(isinstance(v, str) or _is_tokens(v) for v in value):
        inputs = value
    else:
        raise InvalidRequest("Invalid 'input': expected a string, an array of strings, or arrays of token ids.",
                             code="invalid_type", param="input")
    if not inputs or any(not i for i in inputs):
        raise InvalidRequest("'input' must not be empty.", code="invalid_value", param="input")
    return EmbeddingRequest(model=model, body=body, inputs=inputs)
