"""Getting the answer to the caller: the responses whose close settles the request, and
the chat stream relayed as server-sent events, chunk by chunk.

Chunks come as dicts (translated from another protocol, or ones the gateway must read) or
as RawChunks, an OpenAI-protocol upstream's own bytes. A RawChunk goes out as it came but
for its "model"; the text it carries is read later, and only when it is needed: to bill a
stream that ended without usage, or to log content.
"""

import logging
from dataclasses import dataclass
from functools import partial

from django.http import HttpResponse, StreamingHttpResponse

from .upstream.adapters import Usage, usage_from_openai
from .upstream.adapters.base import RawChunk
from .parsing.encoding import dumps, encode, loads
from .api.errors import GatewayError, UpstreamError
from .metering import CapturedText, Exchange, Outcome, cost_of

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
# Unread chunks kept per stream before their text is counted anyway: bounds the memory of
# a long stream (about 1,500 chunks) while sparing the usual stream any parsing.
UNREAD_LIMIT_BYTES = 256 * 1024


def sse(payload: dict, usage_cost=None) -> bytes:
    return b"data: " + encode(payload, usage_cost) + b"\n\n"


def _relayed_text(chunk: dict) -> str:
    parts = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            if isinstance(delta.get("content"), str):
                parts.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    parts.append(function["arguments"])
    return "".join(parts)


class SettlesOnClose:
    """The one place a request is settled: when the server closes its response, after the
    last byte went out or when the caller went away. WSGI servers, Django's test client and
    the console's own views all close what they were given; the settlement's Redis round
    trip and log line are then off the caller's clock."""

    exchange: Exchange | None = None

    def close(self):
        exchange, self.exchange = self.exchange, None  # a server may close twice
        try:
            if exchange is not None:
                self.end_relay()
                exchange.settle()
        finally:
            super().close()

    def end_relay(self) -> None:
        """Make sure the outcome is known before settling it."""


class SettlingResponse(SettlesOnClose, HttpResponse):
    """A whole answer (or an error) for an admitted request."""


class SettlingStream(SettlesOnClose, StreamingHttpResponse):
    """A relayed stream; its relay records how it ended, however early it is closed."""

    def __init__(self, stream_relay: "StreamRelay", exchange: Exchange):
        super().__init__(stream_relay, content_type="text/event-stream")
        self.stream_relay, self.exchange = stream_relay, exchange
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # tell nginx not to hold the stream back

    def end_relay(self) -> None:
        self.stream_relay.close()


class UnreadText:
    """The RawChunks relayed but not yet read, counted into the captured text in order on demand."""

    def __init__(self, text: CapturedText):
        self.text = text
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > UNREAD_LIMIT_BYTES:
            self.count()

    def count(self) -> None:
        if not self.chunks:
            return
        chunks, self.chunks, self.size = self.chunks, [], 0
        try:
            parsed = loads(b"[" + b",".join(chunks) + b"]")  # one parse for them all
        except ValueError:
            parsed = [_loads_or_none(data) for data in chunks]
        for chunk in parsed:
            if isinstance(chunk, dict):
                self.text.count_relayed(_relayed_text(chunk))


class Relabel:
    """Puts the caller's model name into RawChunks, at the byte level.

    The chunks of one stream almost always begin with the same bytes up to and including
    their "model" value (same id, object, created, model): once one chunk's beginning has
    been checked, a chunk that begins with exactly those bytes has its model value at the
    same place, and costs a prefix comparison.
    """

    def __init__(self, model: str):
        self.model_json = dumps(model)
        self.old_head = self.new_head = None

    def __call__(self, chunk: RawChunk) -> bytes | None:
        data = chunk.data
        if self.old_head is not None and data.startswith(self.old_head):
            return self.new_head + data[len(self.old_head):]
        span = chunk.model_span()
        if span is None:
            return None
        start, stop = span
        self.old_head, self.new_head = data[:stop], data[:start] + self.model_json
        return self.new_head + data[stop:]


def _loads_or_none(data: bytes):
    try:
        return loads(data)
    except ValueError:
        return None


def chunk_fields(chunk, provider: str) -> dict:
    """A chunk as a dict: parsed if it came raw, an UpstreamError if it is not JSON."""
    if isinstance(chunk, dict):
        return chunk
    try:
        return chunk.parsed()
    except ValueError:
        raise UpstreamError(f"The upstream provider '{provider}' sent a malformed stream event.")


class StreamRelay:
    """The chat stream's SSE bytes for the caller. Closing it, whether or not it was read
    to the end (or at all), drops the upstream connection and records the outcome."""

    def __init__(self, first_chunk: "dict | RawChunk", chunks, exchange: Exchange):
        self.chunks = chunks
        self.exchange = exchange
        self._events = _relay(first_chunk, chunks, exchange)

    def __iter__(self):
        return self._events

    def close(self) -> None:
        self._events.close()  # runs the relay's own ending if it had started
        # Closing the upstream iterator drops the upstream connection at once, so a caller
        # that went away stops the generation it was paying for.
        self.chunks.close()


def _relay(first_chunk, chunks, exchange: Exchange):
    return metered_stream(exchange, partial(_chat_events, first_chunk, chunks, exchange),
                          lambda error: sse(error.body(exchange.request_id)))


def _chat_events(first_chunk, chunks, exchange: Exchange, progress: "StreamProgress"):
    caller_model = exchange.caller_model
    text = exchange.text
    relabel = Relabel(caller_model)
    unread = UnreadText(text)
    try:
        chunk = first_chunk
        while chunk is not None:
            if type(chunk) is RawChunk:
                relabelled = relabel(chunk)
                if relabelled is not None:
                    unread.add(chunk.data)
                    yield b"data: " + relabelled + b"\n\n"
                    chunk = next(chunks, None)
                    continue
                chunk = chunk_fields(chunk, exchange.route.provider)  # an unusual shape: parse it
            chunk["model"] = caller_model
            cost = None
            if chunk.get("usage") is not None:
                progress.usage = usage_from_openai(chunk["usage"]) or progress.usage
                cost = cost_of(progress.usage, exchange.route) if progress.usage else None
            relayed = _relayed_text(chunk)
            if relayed:
                unread.count()  # the text relayed before this chunk's, in order
                text.count_relayed(relayed)
            yield sse(chunk, cost)
            chunk = next(chunks, None)
        if progress.usage is None:
            # The upstream never said: bill what we relayed, and still end with usage.
            unread.count()
            progress.usage = exchange.estimated_usage("estimated")
            first = _first_fields(first_chunk)
            yield sse({
                "id": first.get("id"), "object": "chat.completion.chunk", "created": first.get("created"),
                "model": caller_model, "choices": [], "usage": progress.usage.as_openai(),
            }, cost_of(progress.usage, exchange.route))
        progress.completed = True
        yield DONE
    finally:
        if progress.usage is None or text.kept is not None:
            unread.count()  # the estimate of a cut stream, or the content log, needs the text


@dataclass
class StreamProgress:
    """What a surface's stream relay has learnt so far (metered_stream)."""

    usage: Usage | None = None  # the upstream's count, or the estimate once the answer is whole
    completed: bool = False  # the whole answer went out; set before its last event is yielded


def metered_stream(exchange: Exchange, events, failure_event):
    """The stream ending of every surface, written once: yield what `events(progress)`
    yields (the surface's own events, which fill in `progress`); if it raises, end with
    `failure_event(error)` in the surface's shape; however it ended (the caller gone
    included), record the exchange's outcome for settlement. A stream not completed is
    charged what was relayed (Exchange.cut_short_usage)."""
    progress = StreamProgress()
    error = None
    exchange.timing.first_byte()
    try:
        yield from events(progress)
    except GatewayError as e:
        error = e
        yield failure_event(e)
    except Exception:
        error = relay_failure(exchange)
        yield failure_event(error)
    finally:
        if progress.completed:
            exchange.outcome = Outcome("completed", progress.usage or exchange.estimated_usage("estimated"))
        else:
            exchange.outcome = Outcome("upstream_error" if error else "client_gone",
                                       exchange.cut_short_usage(progress.usage),
                                       error_code=error.code if error else None)


def relay_failure(exchange: Exchange) -> GatewayError:
    """The error a stream ends with when the gateway itself failed relaying it (logged)."""
    log.exception("stream relay failed on request %s", exchange.request_id)
    return GatewayError("The gateway failed while relaying this stream.", code="internal_error",
                        status=500, error_type="api_error")


def _first_fields(first_chunk) -> dict:
    fields = first_chunk if isinstance(first_chunk, dict) else _loads_or_none(first_chunk.data)
    return fields if isinstance(fields, dict) else {}
