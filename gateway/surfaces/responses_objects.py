"""The Responses API's objects, as the official openai SDK reads them: the `response`,
its output items and content parts, and its usage."""

import time
import uuid

from ..api.errors import GatewayError
from ..metering import cost_of
from ..stored_responses import store_response
from ..upstream.adapters import Usage

# finish_reason -> incomplete_details.reason; any other finish is a completed response.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
# What ResponseError.code may say; the gateway's other codes are the server's failure.
ERROR_CODES = {"rate_limit_exceeded", "server_error", "invalid_prompt"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def responses_usage(usage: Usage) -> dict:
    return {
        "input_tokens": usage.prompt_tokens,
        # Required by the SDK. The gateway's Usage has no cache-write bucket yet (Anthropic's
        # cache creation is counted in input_tokens, at the input price): 0 until it has one.
        "input_tokens_details": {"cached_tokens": usage.cached_tokens,
                                 "cache_write_tokens": getattr(usage, "cache_write_tokens", 0)},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def message_item(item_id: str, text: str, status: str = "completed", refusal: str | None = None) -> dict:
    content = [output_text_part(text)] if text or not refusal else []
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def output_text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict:
    return {"id": item_id, "type": "function_call", "status": status, "arguments": arguments,
            "call_id": call_id, "name": name}


def response_object(exchange, status: str, output: list, usage: Usage | None = None,
                    finish_reason: str | None = None, error: dict | None = None) -> dict:
    """The `response` object; `status` in_progress for the stream's first events, else
    completed, incomplete (by the finish reason) or failed."""
    request = exchange.request
    if status == "completed" and finish_reason in INCOMPLETE_REASONS:
        status = "incomplete"
    return {
        "id": request.response_id,
        "object": "response",
        "created_at": int(exchange.timing.started_at.timestamp()),
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
        "error": error,
        "incomplete_details": {"reason": INCOMPLETE_REASONS[finish_reason]} if status == "incomplete" else None,
        "model": exchange.caller_model,
        "output": output,
        **request.echo,
        "usage": responses_usage(usage) if usage is not None else None,
    }


def failure(error: GatewayError) -> dict:
    code = error.code if error.code in ERROR_CODES else "server_error"
    return {"code": code, "message": error.message}


def keep(exchange, response: dict, usage: Usage) -> None:
    """Store a finished response (store: true) with its cost, as GET will answer it."""
    request = exchange.request
    if not request.store:
        return
    stored = {**response, "usage": {**response["usage"], "cost": str(cost_of(usage, exchange.route))}}
    store_response(exchange.key, [stored_input_item(item) for item in request.input_items], stored)


ITEM_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def stored_input_item(item: dict) -> dict:
    """An input item as OpenAI lists it back (GET /v1/responses/{id}/input_items): with an
    id, and a message's text as parts. It reads back as the same conversation."""
    kind = item.get("type", "message")
    stored = {"id": item.get("id") or new_id(ITEM_ID_PREFIXES.get(kind, "item")), **item, "type": kind}
    if kind == "message" and isinstance(item.get("content"), str):
        part = output_text_part(item["content"]) if item.get("role") == "assistant" else \
            {"type": "input_text", "text": item["content"]}
        stored["content"] = [part]
    return stored
