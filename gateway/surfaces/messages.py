"""POST /v1/messages: Anthropic's Messages API, whole or streamed, and
POST /v1/messages/count_tokens.

An Anthropic upstream gets the caller's body and answers in its own format, relayed but
for the model name; every other upstream gets the chat request the parser makes of it
(gateway.parsing.messages_request), and its chat-shaped answer is said here as a message.
Errors are Anthropic's envelope (gateway.api.errors.anthropic_error).
"""

import json

from django.conf import settings
from django.http import HttpResponse

from ..api.errors import UpstreamError, anthropic_error
from ..parsing.chat_request import _type_error, read_json_object
from ..parsing.encoding import dumps
from ..parsing.messages_request import (NATIVE_PROTOCOL, STOP_REASONS, MessagesRequest, check_messages,
                                        parse_messages_request)
from ..routing.catalog import resolve_route
from ..upstream.adapters import Completion, Usage, adapter_for
from ..upstream.adapters.anthropic import NATIVE_HEADERS
from ..upstream.adapters.anthropic_format import anthropic_usage
from . import Surface
from .messages_stream import message_id, relayed, tool_use_id, translated


def _tool_input(arguments, provider: str) -> dict:
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise UpstreamError(f"The upstream provider '{provider}' sent tool call arguments that are not a JSON object.")
    return value


def _content(body: dict, provider: str) -> tuple[list[dict], str | None]:
    """(content blocks, chat finish reason) of a chat.completion's first choice."""
    choices = body.get("choices") or ()
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    blocks = []
    if isinstance(message.get("content"), str) and message["content"]:
        blocks.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
        blocks.append({"type": "tool_use", "id": call.get("id") or tool_use_id(), "name": function.get("name") or "",
                       "input": _tool_input(function.get("arguments"), provider)})
    return blocks, choice.get("finish_reason")


def _relayed_text(blocks: list[dict]):
    for block in blocks:
        if block["type"] == "text":
            yield block["text"]
        elif block["type"] == "tool_use":
            yield json.dumps(block["input"])
        elif isinstance(block.get("thinking"), str):
            yield block["thinking"]


def encode_answer(exchange, completion: Completion) -> tuple[dict, Usage]:
    text, usage = exchange.text, completion.usage
    if MESSAGES.relays_natively(exchange.route):
        message = completion.body  # Anthropic's own message: only the model is the caller's
        message["model"] = exchange.caller_model
        blocks = [b for b in message.get("content") or () if isinstance(b, dict)]
    else:
        blocks, finish = _content(completion.body, exchange.route.provider)
        message = {"id": message_id(), "type": "message", "role": "assistant", "model": exchange.caller_model,
                   "content": blocks, "stop_reason": STOP_REASONS.get(finish, "end_turn"), "stop_sequence": None}
    if usage is None:
        for relayed_text in _relayed_text(blocks):
            text.count_relayed(relayed_text)
        usage = exchange.estimated_usage("estimated")
    elif text.kept is not None:
        for relayed_text in _relayed_text(blocks):
            text.keep(relayed_text)
    if not MESSAGES.relays_natively(exchange.route):
        message["usage"] = anthropic_usage(usage)
    return message, usage


def encode_stream(exchange, first, chunks):
    if MESSAGES.relays_natively(exchange.route):
        return relayed(exchange, first, chunks)
    return translated(exchange, first, chunks)


MESSAGES = Surface(
    name="messages",
    parse=parse_messages_request,
    encode_answer=encode_answer,
    encode_stream=encode_stream,
    error_encoding=anthropic_error,
    native_protocol=NATIVE_PROTOCOL,
    native_headers=NATIVE_HEADERS,
)


def count_tokens(request, key) -> HttpResponse:
    """POST /v1/messages/count_tokens: an Anthropic upstream's own count, else the gateway's
    estimate (the one billed when an upstream reports no usage). Nothing is held or charged:
    counting sends no prompt to a model."""
    body = read_json_object(request, settings.GATEWAY_MAX_BODY_BYTES)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _type_error("model", "a non-empty string such as 'claude:claude-sonnet-4-5'")
    check_messages(body)
    route = resolve_route(model, key)
    if MESSAGES.relays_natively(route):
        headers = {name: request.headers[name] for name in NATIVE_HEADERS if name in request.headers}
        answer = adapter_for(route).count_tokens_native(route, body, headers)
    else:
        answer = {"input_tokens": MessagesRequest(model, body, stream=False, max_tokens=1).prompt_estimate()}
    return HttpResponse(dumps(answer), content_type="application/json")
