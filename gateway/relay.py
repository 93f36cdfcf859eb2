"""Relaying a chat stream to the caller as server-sent events, chunk by chunk."""

import logging

from django.http import StreamingHttpResponse

from .adapters import usage_from_openai
from .encoding import encode
from .errors import GatewayError
from .metering import Meter, cost_of

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


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


def relay(first_chunk: dict, chunks, meter: Meter, request_id: str):
    """Yield the stream's SSE bytes; record usage once however the stream ends."""
    caller_model = meter.chat.model
    usage = None
    status, error = "client_gone", None
    meter.first_byte()
    try:
        chunk = first_chunk
        while chunk is not None:
            chunk["model"] = caller_model
            cost = None
            if chunk.get("usage") is not None:
                usage = usage_from_openai(chunk["usage"]) or usage
                cost = cost_of(usage, meter.route) if usage else None
            meter.count_relayed(_relayed_text(chunk))
            yield sse(chunk, cost)
            chunk = next(chunks, None)
        if usage is None:
            # The upstream never said: bill what we relayed, and still end with usage.
            usage = meter.estimated_usage("estimated")
            yield sse({
                "id": first_chunk.get("id"), "object": "chat.completion.chunk", "created": first_chunk.get("created"),
                "model": caller_model, "choices": [], "usage": usage.as_openai(),
            }, cost_of(usage, meter.route))
        status = "completed"
        yield DONE
    except GatewayError as e:
        status, error = "upstream_error", e
        yield sse(e.body(request_id))
    except Exception:
        log.exception("stream relay failed on request %s", request_id)
        status = "upstream_error"
        error = GatewayError("The gateway failed while relaying this stream.", code="internal_error",
                             status=500, error_type="api_error")
        yield sse(error.body(request_id))
    finally:
        # Closing the upstream iterator drops the upstream connection at once, so a caller
        # that went away stops the generation it was paying for.
        chunks.close()
        if status != "completed" and usage is None:
            usage = meter.estimated_usage("partial")
        meter.finish(status, usage, http_status=200, error_code=error.code if error else None)


def sse_response(stream) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # tell nginx not to hold the stream back
    return response
