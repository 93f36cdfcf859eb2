"""The Responses event stream, translated from the adapters' chat.completion.chunks.

Metered exactly as the chat relay meters (gateway.relay): the upstream's usage when it
reports one, else the prompt estimate and the text relayed; a stream cut after its first
byte is charged what was relayed ("partial") and ends with `response.failed`, never
`response.completed`. Closing it, read to the end or not, drops the upstream connection
and records the outcome that SettlingStream settles.

Events, as OpenAI sends them: response.created, response.in_progress, then per output item
output_item.added, (content_part.added, output_text.delta…, output_text.done,
content_part.done | function_call_arguments.delta…, function_call_arguments.done),
output_item.done, and last response.completed carrying the whole response with its usage
and cost, its status "incomplete" when the output cap or a content filter cut the answer.
(OpenAI itself names that last event response.incomplete; DESIGN.md's contract, which
callers and the official SDK's stream helper rely on, ends every answer that was not cut
by a failure in response.completed.)
"""

import logging
from functools import partial

from ..api.errors import GatewayError
from ..metering import Exchange, cost_of
from ..parsing.encoding import dumps, encode
from ..relay import _relayed_text, chunk_fields, metered_stream
from ..upstream.adapters import usage_from_openai
from .responses_objects import failure, function_call_item, keep, message_item, new_id, output_text_part, response_object

log = logging.getLogger(__name__)


class ResponsesStream:
    def __init__(self, first_chunk, chunks, exchange: Exchange):
        self.chunks = chunks
        self._events = _relay(first_chunk, chunks, exchange)

    def __iter__(self):
        return self._events

    def close(self) -> None:
        self._events.close()
        self.chunks.close()  # a caller gone stops the generation it was paying for


class _Events:
    """The event sequence of one response: numbered, each output item opened and closed once."""

    def __init__(self, exchange: Exchange):
        self.exchange = exchange
        self.sequence = 0
        self.output: list[dict] = []  # the items, finished or not, in output order
        self.open: dict | None = None  # the item being streamed
        self.calls: dict[int, dict] = {}  # chat tool_calls index -> its function_call item
        self.finish_reason = None
        # The open message's text, in pieces until it is read: adding each delta to one
        # string copies all the text so far, per delta (quadratic in a long answer).
        self._pieces: list[str] = []
        self._delta: _TextDelta | None = None

    def event(self, kind: str, **fields) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return _sse(kind, encode(payload))

    def lifecycle(self, kind: str, response: dict, cost=None) -> bytes:
        """An event carrying the whole response; `cost` goes into its usage, exact."""
        head = encode({"type": kind, "sequence_number": self.sequence})
        self.sequence += 1
        return _sse(kind, head[:-1] + b',"response":' + encode(response, cost) + b"}")

    def response(self, status: str, usage=None, error=None) -> dict:
        return response_object(self.exchange, status, self.output, usage, self.finish_reason, error)

    def _index(self, item: dict) -> int:
        return self.output.index(item)

    def _open(self, item: dict):
        yield from self.close_open()
        self.output.append(item)
        self.open = item
        yield self.event("response.output_item.added", output_index=self._index(item),
                         item={**item, "status": "in_progress", **_empty(item)})

    def text(self, delta: str):
        item = self.open
        if item is None or item["type"] != "message":
            item = message_item(new_id("msg"), "", status="in_progress")
            yield from self._open(item)
            yield self.event("response.content_part.added", item_id=item["id"], output_index=self._index(item),
                             content_index=0, part=output_text_part(""))
            self._delta = _TextDelta(item["id"], self._index(item))
        self._pieces.append(delta)
        yield self._delta.event(self.sequence, delta)
        self.sequence += 1

    def flush_text(self) -> None:
        """Put the open message's pieces into its text, before anything reads it."""
        if self._pieces:
            self.open["content"][0]["text"] += "".join(self._pieces)
            self._pieces = []

    def tool_call(self, call: dict):
        index = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        item = self.calls.get(index)
        if item is None:
            item = function_call_item(new_id("fc"), str(call.get("id") or new_id("call")),
                                      str(function.get("name") or ""), "", status="in_progress")
            self.calls[index] = item
            yield from self._open(item)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item["arguments"] += arguments
            if item is self.open:  # a late fragment of a closed call is only in the final response
                yield self.event("response.function_call_arguments.delta", item_id=item["id"],
                                 output_index=self._index(item), delta=arguments)

    def close_open(self):
        self.flush_text()
        item, self.open = self.open, None
        if item is None:
            return
        index = self._index(item)
        item["status"] = "completed"
        if item["type"] == "message":
            part = item["content"][0]
            yield self.event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                             text=part["text"], logprobs=[])
            yield self.event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                             part=part)
        else:
            yield self.event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                             name=item["name"], arguments=item["arguments"])
        yield self.event("response.output_item.done", output_index=index, item=item)

    def chunk(self, chunk: dict):
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                yield from self.text(delta["content"])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    yield from self.tool_call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]


def _sse(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class _TextDelta:
    """A message's response.output_text.delta events, the most frequent by far: everything
    but the number and the text encoded once per message, the bytes _Events.event would
    write, in the same field order."""

    def __init__(self, item_id: str, output_index: int):
        self.head = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
        self.middle = b',"item_id":' + dumps(item_id) + b',"output_index":%d,"content_index":0,"delta":' % output_index
        self.tail = b',"logprobs":[]}\n\n'

    def event(self, sequence: int, delta: str) -> bytes:
        return b"%s%d%s%s%s" % (self.head, sequence, self.middle, dumps(delta), self.tail)


def _empty(item: dict) -> dict:
    """An item as output_item.added announces it: before any of its content."""
    return {"content": []} if item["type"] == "message" else {"arguments": ""}


def _relay(first_chunk, chunks, exchange: Exchange):
    events = _Events(exchange)
    return metered_stream(exchange, partial(_response_events, first_chunk, chunks, exchange, events),
                          partial(_failed, events))


def _response_events(first_chunk, chunks, exchange: Exchange, events: _Events, progress):
    text = exchange.text
    yield events.lifecycle("response.created", events.response("in_progress"))
    yield events.lifecycle("response.in_progress", events.response("in_progress"))
    chunk = first_chunk
    while chunk is not None:
        chunk = chunk_fields(chunk, exchange.route.provider)
        if chunk.get("usage") is not None:
            progress.usage = usage_from_openai(chunk["usage"]) or progress.usage
        text.count_relayed(_relayed_text(chunk))
        for data in events.chunk(chunk):
            yield data
        chunk = next(chunks, None)
    if progress.usage is None:
        progress.usage = exchange.estimated_usage("estimated")  # the upstream never said: bill what was relayed
    closing = list(events.close_open())
    final = events.response("completed", progress.usage)
    keep(exchange, final, progress.usage)  # before the last event: a GET right after it finds the response
    progress.completed = True
    yield b"".join(closing) + events.lifecycle("response.completed", final, cost_of(progress.usage, exchange.route))


def _failed(events: _Events, error: GatewayError) -> bytes:
    events.flush_text()
    for item in events.output:
        if item["status"] == "in_progress":
            item["status"] = "incomplete"
    events.open = None
    return events.lifecycle("response.failed", events.response("failed", error=failure(error)))
