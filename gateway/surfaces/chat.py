"""POST /v1/chat/completions: OpenAI's chat completions, whole or streamed."""

from ..upstream.adapters import Completion, Usage
from ..parsing.chat_request import parse_chat_request
from ..relay import StreamRelay
from . import Surface, openai_answer


def _message_texts(body: dict):
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            yield message["content"]


def encode_answer(exchange, completion: Completion) -> tuple[dict, Usage]:
    body, usage, text = completion.body, completion.usage, exchange.text
    if usage is None:
        # The upstream did not say: bill the prompt estimate and the text relayed.
        for content in _message_texts(body):
            text.count_relayed(content)
        usage = exchange.estimated_usage("estimated")
    elif text.kept is not None:
        for content in _message_texts(body):
            text.keep(content)
    return openai_answer(body, usage, exchange.caller_model), usage


CHAT = Surface(
    name="chat",
    parse=parse_chat_request,
    encode_answer=encode_answer,
    encode_stream=lambda exchange, first, chunks: StreamRelay(first, chunks, exchange),
)
