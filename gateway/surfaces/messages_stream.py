"""The Messages surface's event streams (Anthropic's server-sent events).

Two relays end as every stream does (gateway.relay.metered_stream): closable,
dropping the upstream connection when closed, recording how the stream ended and the usage
to charge, and ending with `event: error` if the upstream fails after the first byte.
- `translated`: the adapters' chat.completion.chunks said as message_start,
  content_block_start / _delta / _stop, message_delta (stop reason and usage), message_stop.
- `relayed`: an Anthropic upstream's own events, as they came but for message_start's
  model (the caller's); usage is read from message_start and message_delta.
"""

import logging
import uuid
from functools import partial

from ..api.errors import GatewayError, anthropic_error
from ..metering import Exchange, cost_of
from ..parsing.encoding import dumps, encode
from ..parsing.messages_request import STOP_REASONS
from ..relay import chunk_fields, metered_stream
from ..upstream.adapters import usage_from_openai
from ..upstream.adapters.anthropic_format import anthropic_usage, usage_from_anthropic

log = logging.getLogger(__name__)


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def tool_use_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"


def sse_event(kind: str, payload: dict, usage_cost=None) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + encode(payload, usage_cost) + b"\n\n"


class MessagesStream:
    """The bytes of one Messages stream; closing it, read to the end or not, closes the
    upstream's chunks and so its connection."""

    def __init__(self, events, chunks):
        self._events, self.chunks = events, chunks

    def __iter__(self):
        return self._events

    def close(self) -> None:
        self._events.close()  # runs the relay's own ending if it had started
        self.chunks.close()


def _failure_event(exchange: Exchange, error: GatewayError) -> bytes:
    _, body = anthropic_error(error, exchange.request_id)
    return sse_event("error", body)


class _Blocks:
    """The content blocks of the message being streamed, one open at a time."""

    def __init__(self):
        self.index = -1
        self.open_kind: str | None = None
        self.tool_blocks: dict[int, int] = {}  # the chat tool call's index -> its block's index

    def _start(self, block: dict) -> list[bytes]:
        out = self.stop()
        self.index += 1
        self.open_kind = block["type"]
        out.append(sse_event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                     "content_block": block}))
        return out

    def stop(self) -> list[bytes]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def text(self, text: str) -> list[bytes]:
        out = [] if self.open_kind == "text" else self._start({"type": "text", "text": ""})
        out.append(sse_event("content_block_delta", {"type": "content_block_delta", "index": self.index,
                                                     "delta": {"type": "text_delta", "text": text}}))
        return out

    def tool_call(self, call: dict) -> list[bytes]:
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        position = call.get("index", 0)
        out = []
        if position not in self.tool_blocks:
            out = self._start({"type": "tool_use", "id": call.get("id") or tool_use_id(),
                               "name": function.get("name") or "", "input": {}})
            self.tool_blocks[position] = self.index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(sse_event("content_block_delta", {
                "type": "content_block_delta", "index": self.tool_blocks[position],
                "delta": {"type": "input_json_delta", "partial_json": arguments}}))
        return out


def _message_start(exchange: Exchange, usage: dict) -> bytes:
    return sse_event("message_start", {"type": "message_start", "message": {
        "id": message_id(), "type": "message", "role": "assistant", "model": exchange.caller_model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}})


def translated(exchange: Exchange, first, chunks) -> MessagesStream:
    return MessagesStream(metered_stream(exchange, partial(_translate, exchange, first, chunks),
                                         partial(_failure_event, exchange)), chunks)


def _translate(exchange: Exchange, first, chunks, progress):
    text, finish = exchange.text, None
    blocks = _Blocks()
    yield _message_start(exchange, {"input_tokens": 0, "output_tokens": 0})
    chunk = first
    while chunk is not None:
        chunk = chunk_fields(chunk, exchange.route.provider)
        if chunk.get("usage") is not None:
            progress.usage = usage_from_openai(chunk["usage"]) or progress.usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # Anthropic has one answer per message (n is 1 here)
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                text.count_relayed(content)
                yield from blocks.text(content)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    arguments = (call.get("function") or {}).get("arguments")
                    text.count_relayed(arguments if isinstance(arguments, str) else "")
                    yield from blocks.tool_call(call)
            finish = choice.get("finish_reason") or finish
        chunk = next(chunks, None)
    yield from blocks.stop()
    if progress.usage is None:
        progress.usage = exchange.estimated_usage("estimated")  # the upstream never said: what we relayed
    yield sse_event("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": STOP_REASONS.get(finish, "end_turn"),
                                           "stop_sequence": None},
        "usage": anthropic_usage(progress.usage)}, cost_of(progress.usage, exchange.route))
    progress.completed = True
    yield sse_event("message_stop", {"type": "message_stop"})


def relayed(exchange: Exchange, first, events) -> MessagesStream:
    return MessagesStream(metered_stream(exchange, partial(_relay, exchange, first, events),
                                         partial(_failure_event, exchange)), events)


_RELAYED_TEXT = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


def _relay(exchange: Exchange, first, events, progress):
    text = exchange.text
    event = first
    while event is not None:
        kind, data = event.kind, event.data
        if kind == "message_start":
            message = event.event.get("message") if isinstance(event.event.get("message"), dict) else {}
            progress.usage = usage_from_anthropic(message.get("usage") or {})
            message["model"] = exchange.caller_model
            data = dumps(event.event)
        elif kind == "message_delta":
            progress.usage = usage_from_anthropic(event.event.get("usage") or {}, previous=progress.usage)
            event.event.setdefault("usage", {})
            data = encode(event.event, cost_of(progress.usage, exchange.route))
        elif kind == "content_block_delta":
            delta = event.event.get("delta") if isinstance(event.event.get("delta"), dict) else {}
            relayed_text = delta.get(_RELAYED_TEXT.get(delta.get("type"), ""))
            if isinstance(relayed_text, str):
                text.count_relayed(relayed_text)
        if kind == "message_stop":
            progress.completed = True
        yield b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
        event = next(events, None)
    if progress.usage is None:
        progress.usage = exchange.estimated_usage("estimated")  # no message_start: what we relayed
