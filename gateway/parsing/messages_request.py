"""Reading Anthropic's Messages API body (POST /v1/messages), and saying it in the chat
format for upstreams that do not speak it.

To an upstream whose protocol is `anthropic` the body goes as it came, but for `model`
(and a `max_tokens` above the catalog's cap, lowered to the cap the reservation covers):
cache_control, thinking and every beta field survive. Any other upstream gets the
ChatRequest `to_chat` makes of it. What that translation cannot say is a 400 naming the
field, never dropped on the way, with three documented exceptions that change no answer:
`cache_control` (a caching hint: other providers cache on their own), thinking blocks of
earlier turns (signed by Anthropic for Anthropic; no other model can read them, and
Anthropic itself leaves earlier turns' thinking out of the context), and
`thinking: {"type": "disabled"}` (what every other model does anyway). Anthropic's
service options (`service_tier`, `context_management` and betas' fields) ask nothing of the
answer another model could give and are not sent; `mcp_servers` and `container` ask for
work only Anthropic does, and are a 400.
"""

import json
from dataclasses import dataclass, replace

from django.conf import settings

from ..api.errors import InvalidRequest
from .chat_request import MAX_OUTPUT_TOKENS, ChatRequest, _optional_number, _type_error
from .tokens import estimate_prompt_tokens, prompt_tokens_bound

NATIVE_PROTOCOL = "anthropic"  # the upstream protocol that takes this body as it is
ROLES = ("user", "assistant")
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


@dataclass
class MessagesRequest:
    model: str  # exactly as the caller wrote it; answers echo it back
    body: dict  # the caller's whole body
    stream: bool
    max_tokens: int  # required by Anthropic's API, and the output bound reserved for

    def prompt_bound(self, context_window: int | None) -> int:
        return prompt_tokens_bound(_as_chat_shape(self.body), context_window)

    def output_cap(self, max_output_tokens: int | None) -> int:
        return min(self.max_tokens, max_output_tokens) if max_output_tokens else self.max_tokens

    def output_bound(self, max_output_tokens: int | None) -> int:
        return self.output_cap(max_output_tokens)

    def prompt_estimate(self) -> int:
        """The estimate billed when an upstream reports no usage, and count_tokens' answer
        for other protocols: that of the same conversation sent to /v1/chat/completions."""
        try:
            return estimate_prompt_tokens(chat_messages(self.body))
        except InvalidRequest:  # what only Anthropic can read: estimated from its text
            return estimate_prompt_tokens(_as_chat_shape(self.body)["messages"])

    def for_route(self, route):
        """The request as this route's upstream takes it: the body itself for Anthropic's
        protocol (with the output cap the reservation covers), else the chat request."""
        if route.protocol != NATIVE_PROTOCOL:
            return to_chat(self).for_route(route)
        cap = self.output_cap(route.max_output_tokens)
        return self if cap == self.max_tokens else replace(self, body={**self.body, "max_tokens": cap},
                                                           max_tokens=cap)


# -- checking the body -------------------------------------------------------------------


def _missing(name: str) -> InvalidRequest:
    return InvalidRequest(f"{name}: Field required", code="missing_required_parameter", param=name)


def _check_blocks(where: str, content) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _type_error(where, "a string or an array of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _type_error(f"{where}[{j}]", "an object with a 'type'")


def parse_messages_request(body: dict) -> MessagesRequest:
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model.strip():
        raise _type_error("model", "a non-empty string such as 'claude:claude-sonnet-4-5'")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _missing("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _type_error("max_tokens", "an integer")
    if not 1 <= max_tokens <= MAX_OUTPUT_TOKENS:
        raise InvalidRequest(f"max_tokens: must be between 1 and {MAX_OUTPUT_TOKENS}.", code="invalid_value",
                             param="max_tokens")
    check_messages(body)
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _type_error("stream", "a boolean")
    _optional_number(body, "temperature", 0, 1)
    _optional_number(body, "top_p", 0, 1)
    for name, expected in (("stop_sequences", list), ("tools", list), ("tool_choice", dict), ("metadata", dict),
                           ("thinking", dict)):
        if body.get(name) is not None and not isinstance(body[name], expected):
            raise _type_error(name, "an array" if expected is list else "an object")
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise _type_error("top_k", "a non-negative integer")
    return MessagesRequest(model=model, body=body, stream=stream, max_tokens=max_tokens)


def check_messages(body: dict) -> None:
    """`messages` and `system` as Anthropic's API takes them (count_tokens checks these too)."""
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array of message objects")
    if not messages:
        raise InvalidRequest("messages: at least one message is required.", code="invalid_value", param="messages")
    if len(messages) > settings.GATEWAY_MAX_MESSAGES:
        raise InvalidRequest(f"messages: at most {settings.GATEWAY_MAX_MESSAGES} messages are accepted.",
                             code="too_many_messages", param="messages")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _type_error(where, "an object with 'role' and 'content'")
        if message.get("role") not in ROLES:
            raise InvalidRequest(f"{where}.role: must be 'user' or 'assistant'.", code="invalid_value",
                                 param=f"{where}.role")
        if "content" not in message:
            raise _missing(f"{where}.content")
        _check_blocks(f"{where}.content", message["content"])
    if body.get("system") is not None:
        _check_blocks("system", body["system"])


# -- the chat format's reading of it -----------------------------------------------------


def _cannot(what: str, param: str = "messages") -> InvalidRequest:
    return InvalidRequest(f"{what} cannot be expressed to this model's provider: send it to an Anthropic model, "
                          "or leave it out.", code="unsupported_parameter", param=param)


def _image_part(block: dict) -> dict:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        url = f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _cannot(f"An image whose source is of type '{source.get('type')}'")
    return {"type": "image_url", "image_url": {"url": url}}


def _text_blocks(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    parts = []
    for block in content:
        if block["type"] != "text":
            raise _cannot(f"A '{block['type']}' block in {where}", where)
        parts.append({"type": "text", "text": block.get("text") or ""})
    return parts


def _joined(parts: list[dict]) -> str | list[dict]:
    return parts[0]["text"] if len(parts) == 1 else parts


def _tool_result(block: dict) -> dict:
    content = block.get("content")
    parts = _text_blocks(content, "a tool_result") if content is not None else []
    text = "".join(part["text"] for part in parts)
    if block.get("is_error"):
        text = f"[tool error] {text}"  # the chat format has no error flag: the model reads it here
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}


def _user_turn(content) -> list[dict]:
    """A user turn: its tool results first (each a tool message, answering the assistant's
    calls just before), then what else it says as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools, parts = [], []
    for block in content:
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "tool_result":
            tools.append(_tool_result(block))
        else:
            raise _cannot(f"A '{kind}' content block")
    return tools + ([{"role": "user", "content": parts}] if parts or not tools else [])


def _assistant_turn(content) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text, calls = [], []
    for block in content:
        kind = block["type"]
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})}})
        elif kind not in ("thinking", "redacted_thinking"):  # earlier turns' thinking: see the docstring
            raise _cannot(f"A '{kind}' block in an assistant turn")
    message = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: dict) -> dict:
    if "input_schema" not in tool or tool.get("type") not in (None, "custom"):
        raise _cannot(f"The server tool '{tool.get('name') or tool.get('type')}'", "tools")
    function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: dict, chat: dict) -> None:
    kind = choice.get("type")
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in ("auto", "any", "none"):
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    else:
        raise InvalidRequest(f"tool_choice.type: unknown value {kind!r}.", code="invalid_value", param="tool_choice")
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def chat_messages(body: dict) -> list[dict]:
    """The conversation, system prompt first, as chat messages."""
    messages = []
    if body.get("system"):
        messages.append({"role": "system", "content": _joined(_text_blocks(body["system"], "system"))})
    for message in body["messages"]:
        if message["role"] == "user":
            messages.extend(_user_turn(message["content"]))
        else:
            messages.append(_assistant_turn(message["content"]))
    return messages


# Fields that make Anthropic run something on its side (MCP servers, a code container): no
# other provider would, so the answer could not be the one asked for.
ANTHROPIC_ONLY = ("mcp_servers", "container")


def to_chat(request: MessagesRequest) -> ChatRequest:
    body = request.body
    for name in ANTHROPIC_ONLY:
        if body.get(name):
            raise _cannot(f"'{name}'", name)
    thinking = body.get("thinking")
    if thinking and thinking.get("type") != "disabled":
        raise InvalidRequest("Extended thinking ('thinking') cannot be expressed to this model's provider: send it "
                             "to an Anthropic model, or leave it out (Claude Code: set MAX_THINKING_TOKENS=0, "
                             "see docs/agents.md).", code="unsupported_parameter", param="thinking")
    chat = {"model": request.model, "messages": chat_messages(body), "max_tokens": request.max_tokens}
    if request.stream:
        chat["stream"] = True
    for name in ("temperature", "top_p", "top_k"):  # top_k: Gemini and many OpenAI-compatible servers take it
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        if not all(isinstance(tool, dict) for tool in body["tools"]):
            raise _type_error("tools", "an array of tool objects")
        chat["tools"] = [_tool(tool) for tool in body["tools"]]
    if body.get("tool_choice"):
        _tool_choice(body["tool_choice"], chat)
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str):
        chat["user"] = user
    return ChatRequest(model=request.model, body=chat, stream=request.stream, max_tokens=request.max_tokens)


def _as_chat_shape(body: dict) -> dict:
    """The body in the shape the token estimate and bound read ({messages, tools}), without
    translating it: admission must not refuse what only the upstream chosen later can judge."""
    messages = [{"role": m.get("role"), "content": m.get("content")} for m in body["messages"]]
    if body.get("system"):
        messages.insert(0, {"role": "system", "content": body["system"]})
    return {"messages": messages, "tools": body.get("tools")}
