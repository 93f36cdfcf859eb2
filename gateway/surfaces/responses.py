"""POST /v1/responses: OpenAI's Responses API over the one pipeline.

The body becomes a ChatRequest (gateway.parsing.responses_request), so routing, admission,
failover and settlement are chat's; the adapters' chat-shaped answer becomes a `response`
object here, and their chunks the Responses event stream (responses_stream). Answers are
stored for the organization unless the caller said `store: false`.
"""

from decimal import Decimal

from ..api.errors import GatewayError
from ..parsing.responses_request import ResponsesRequest, parse_responses_request
from ..stored_responses import find_stored_response
from ..upstream.adapters import Completion, Usage
from . import Surface
from .chat import encode_answer as chat_answer
from .responses_objects import function_call_item, keep, message_item, new_id, response_object
from .responses_stream import ResponsesStream


def previous_response_not_found(response_id) -> GatewayError:
    return GatewayError(f"Previous response with id '{response_id}' not found.", code="previous_response_not_found",
                        param="previous_response_id", status=404)


def parse_for(key):
    """The parser for one caller: `previous_response_id` is looked up in its organization."""

    def parse(body: dict) -> ResponsesRequest:
        earlier = None
        previous_id = body.get("previous_response_id")
        if previous_id is not None:
            stored = find_stored_response(key.organization_id, previous_id)
            if stored is None:
                raise previous_response_not_found(previous_id)
            earlier = stored.input_items + stored.output_items
        request = parse_responses_request(body, earlier)
        request.response_id = new_id("resp")
        return request

    return parse


# -- whole answers ----------------------------------------------------------------------


def output_of_message(message: dict) -> list[dict]:
    output = []
    text, refusal = message.get("content"), message.get("refusal")
    if isinstance(text, str) and text or isinstance(refusal, str) and refusal:
        output.append(message_item(new_id("msg"), text if isinstance(text, str) else "",
                                   refusal=refusal if isinstance(refusal, str) else None))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append(function_call_item(new_id("fc"), str(call.get("id") or new_id("call")),
                                             str(function.get("name") or ""), str(function.get("arguments") or "")))
    return output


def encode_answer(exchange, completion: Completion) -> tuple[dict, Usage]:
    body, usage = chat_answer(exchange, completion)  # chat's rule for what is charged
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    response = response_object(exchange, "completed", output_of_message(message), usage, choice.get("finish_reason"))
    keep(exchange, response, usage)
    return response, usage


def encode_stream(exchange, first, chunks):
    return ResponsesStream(first, chunks, exchange)


def surface_for(key) -> Surface:
    """The surface for one caller: made per request (it is three references) because its
    parser reads the caller's organization's stored responses."""
    return Surface(name="responses", parse=parse_for(key), encode_answer=encode_answer, encode_stream=encode_stream)


def stored_answer(stored) -> tuple[dict, Decimal | None]:
    """A stored response as GET answers it, and its cost (a JSON number in usage)."""
    response = stored.as_response()
    usage = dict(response.get("usage") or {})
    cost = usage.pop("cost", None)
    return {**response, "usage": usage or None}, Decimal(cost) if cost is not None else None
