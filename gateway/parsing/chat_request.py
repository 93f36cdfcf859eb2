"""Reading and checking a chat completion request before anything is forwarded."""

import json
import re
from dataclasses import dataclass, replace

from django.conf import settings
from django.http import RawPostDataException
from django.http.request import RequestDataTooBig

from ..api.errors import InvalidRequest, RequestTooLarge
from .tokens import estimate_prompt_tokens, prompt_tokens_bound

# Far above any model's limits, and small enough that a worst-case cost stays exact.
MAX_OUTPUT_TOKENS = 100_000_000
MAX_CHOICES = 128
# JSON can escape half a UTF-16 pair ("\ud800"); such a string has no UTF-8 form.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# The names upstreams give an answer's length cap. Any of them may be the one an upstream
# honours, so the gateway reserves for the largest and sends that cap in each of them.
OUTPUT_CAP_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


@dataclass
class ChatRequest:
    model: str  # exactly as the caller wrote it; answers echo it back
    body: dict  # the caller's whole body; unknown fields pass through upstream
    stream: bool
    max_tokens: int | None  # the largest output cap the caller sent, per choice
    choices: int = 1  # n

    # What billing needs to know of any request: bounds to reserve, an estimate to charge.
    def prompt_bound(self, context_window: int | None) -> int:
        return prompt_tokens_bound(self.body, context_window)

    def output_cap(self, max_output_tokens: int | None) -> int:
        """The most tokens one choice may have from a model with this catalog cap."""
        caps = [cap for cap in (self.max_tokens, max_output_tokens) if cap]
        return min(caps) if caps else settings.BILLING_DEFAULT_MAX_OUTPUT_TOKENS

    def output_bound(self, max_output_tokens: int | None) -> int:
        return self.output_cap(max_output_tokens) * self.choices

    def for_route(self, route) -> "ChatRequest":
        """The request as it goes to this route: with the output cap its reservation covers
        written explicitly (an upstream left to its own default could answer at length)."""
        cap = self.output_cap(route.max_output_tokens)
        fields = [name for name in OUTPUT_CAP_FIELDS if self.body.get(name) is not None] or ["max_tokens"]
        if cap == self.max_tokens and all(self.body[name] == cap for name in fields if name in self.body):
            return self  # the usual request: one cap, already within the model's
        return replace(self, body={**self.body, **dict.fromkeys(fields, cap)}, max_tokens=cap)

    def prompt_estimate(self) -> int:
        return estimate_prompt_tokens(self.body["messages"])


def _nesting_exceeds(value, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (the top-level object is 1).
    Iterative, so a hostile body cannot exhaust the stack here."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _check_content_type(request) -> None:
    # A missing Content-Type, or curl -d's default application/x-www-form-urlencoded, is
    # read as JSON all the same (callers forget the header); a multipart form never is.
    media_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        raise InvalidRequest("Content-Type multipart/form-data is not supported here; send the body as a JSON "
                             "object with 'Content-Type: application/json'.", code="invalid_content_type")


def read_json_object(request, max_bytes: int) -> dict:
    """The request body as a JSON object, or a 400/413 that says what is wrong."""
    _check_content_type(request)
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > max_bytes:
        raise RequestTooLarge(f"Request body is larger than the limit of {max_bytes} bytes.")
    try:
        raw = request.body
    except (RequestDataTooBig, RawPostDataException):
        raise RequestTooLarge(f"Request body is larger than the limit of {max_bytes} bytes.")
    if len(raw) > max_bytes:
        raise RequestTooLarge(f"Request body is larger than the limit of {max_bytes} bytes.")
    if not raw.strip():
        raise InvalidRequest("Request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidRequest("Request body is nested too deeply: JSON arrays and objects may nest at most "
                             f"{settings.GATEWAY_MAX_JSON_DEPTH} levels.", code="invalid_json")
    except ValueError:
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json")
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidRequest("Request body has a string with an unpaired UTF-16 surrogate escape.",
                                 code="invalid_json")
    max_depth = settings.GATEWAY_MAX_JSON_DEPTH
    # Fewer brackets than levels cannot nest too deep (brackets inside strings only
    # overcount), which spares the walk for nearly every real request.
    if raw.count(b"[") + raw.count(b"{") > max_depth and _nesting_exceeds(body, max_depth):
        raise InvalidRequest(f"Request body is nested too deeply: JSON arrays and objects may nest at most "
                             f"{max_depth} levels.", code="invalid_json")
    return body


def _type_error(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}.", code="invalid_type", param=param)


def _optional_number(body: dict, name: str, low: float, high: float):
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "a number")
    if not low <= value <= high:
        raise InvalidRequest(f"Invalid '{name}': must be between {low} and {high}.", code="invalid_value", param=name)


def _optional_positive_int(body: dict, name: str, most: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an integer")
    if not 1 <= value <= most:
        raise InvalidRequest(f"Invalid '{name}': must be between 1 and {most}.", code="invalid_value", param=name)
    return value


def _check_message(i: int, message) -> None:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _type_error(where, "an object with 'role' and 'content'")
    role = message.get("role")
    if role is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.role'.", code="missing_required_parameter",
                             param=f"{where}.role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidRequest(f"Invalid value for '{where}.role': {role!r}. Supported: {', '.join(sorted(ROLES))}.",
                             code="invalid_value", param=f"{where}.role")
    content = message.get("content")
    if content is None:
        # Only an assistant turn that calls tools may leave content out.
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return
        raise InvalidRequest(f"Missing required parameter: '{where}.content'.", code="missing_required_parameter",
                             param=f"{where}.content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _type_error(f"{where}.content[{j}]", "an object with a 'type'")
    elif not isinstance(content, str):
        raise _type_error(f"{where}.content", "a string or an array of content parts")


def parse_chat_request(body: dict) -> ChatRequest:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", code="missing_required_parameter", param="model")
    if not isinstance(model, str) or not model.strip():
        raise _type_error("model", "a non-empty string such as 'deepseek:deepseek-chat'")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", code="missing_required_parameter",
                             param="messages")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array of message objects")
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", code="invalid_value", param="messages")
    max_messages = settings.GATEWAY_MAX_MESSAGES
    if len(messages) > max_messages:
        raise InvalidRequest(f"'messages' has {len(messages)} messages; at most {max_messages} are accepted.",
                             code="too_many_messages", param="messages")
    for i, message in enumerate(messages):
        _check_message(i, message)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _type_error("stream", "a boolean")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise _type_error("stream_options", "an object")
    _optional_number(body, "temperature", 0, 2)
    _optional_number(body, "top_p", 0, 1)
    choices = _optional_positive_int(body, "n", MAX_CHOICES) or 1
    caps = [cap for name in OUTPUT_CAP_FIELDS if (cap := _optional_positive_int(body, name, MAX_OUTPUT_TOKENS))]
    return ChatRequest(model=model, body=body, stream=stream, max_tokens=max(caps, default=None), choices=choices)
