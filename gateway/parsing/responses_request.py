"""Reading a Responses API body (POST /v1/responses) into the gateway's ChatRequest.

The upstream adapters speak OpenAI's chat format, so a Responses body becomes a chat body:
`instructions` a system message, input items chat messages (function calls an assistant
turn's tool_calls, their outputs tool messages), function tools chat tools, `text.format`
a response_format and `max_output_tokens` the output cap that admission reserves and the
upstream is sent. What chat cannot say (hosted tools, files, item references, background
runs) is a 400 naming the parameter, never dropped. Fields only the Responses object needs
(metadata, store, the echo of tools and instructions) ride along in `ResponsesRequest`.
"""

from dataclasses import dataclass, field

from ..api.errors import InvalidRequest
from .chat_request import MAX_OUTPUT_TOKENS, ChatRequest, parse_chat_request

ROLES = {"user", "assistant", "system", "developer"}
# Accepted and answered as OpenAI does, with nothing to send upstream: `include` only
# names extra output (none of which the gateway makes), `truncation` is the caller's
# permission to drop context (never needed here), `stream_options` tunes obfuscation,
# `client_metadata` is the client's own labels (the Codex CLI sends it on every request).
ACCEPTED = {"client_metadata", "include", "truncation", "stream_options", "background", "reasoning", "metadata", "store",
            "previous_response_id", "instructions", "input", "model", "stream", "tools", "tool_choice", "text",
            "max_output_tokens", "temperature", "top_p", "parallel_tool_calls"}
# Passed to the chat upstream under the same name.
PASSED_THROUGH = ("user", "safety_identifier", "prompt_cache_key", "service_tier")
METADATA_MOST_PAIRS = 16


@dataclass
class ResponsesRequest(ChatRequest):
    # The conversation as Responses input items: a previous response's input and output
    # first, then this request's input. Stored with the answer.
    input_items: list = field(default_factory=list)
    store: bool = True
    response_id: str = ""  # "resp_…", made when the request is read
    # The request's fields as the response object echoes them back.
    echo: dict = field(default_factory=dict)


def _invalid(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="unsupported_parameter", param=param)


def _type_error(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}.", code="invalid_type", param=param)


def _string(value, param: str) -> str:
    if not isinstance(value, str):
        raise _type_error(param, "a string")
    return value


# -- input items -> chat messages ---------------------------------------------------


def _image_part(part: dict, where: str) -> dict:
    if part.get("file_id") is not None:
        raise _unsupported("Images by 'file_id' are not supported by this gateway; send 'image_url' (an https "
                           "or data: URL).", f"{where}.file_id")
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"Missing required parameter: '{where}.image_url'.",
                             code="missing_required_parameter", param=f"{where}.image_url")
    image = {"url": url}
    if part.get("detail") is not None:
        image["detail"] = _string(part["detail"], f"{where}.detail")
    return {"type": "image_url", "image_url": image}


def _text_of_parts(parts, where: str, kinds: set[str]) -> str:
    texts = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise _unsupported(f"Content of type {kind!r} is not supported here; use one of {sorted(kinds)}.",
                               f"{where}[{j}].type")
        texts.append(_string(part.get("text" if kind != "refusal" else "refusal", ""), f"{where}[{j}].text"))
    return "".join(texts)


def _user_content(content, where: str):
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_error(where, "a string or an array of input parts")
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": _string(part.get("text", ""), f"{where}[{j}].text")})
        elif kind == "input_image":
            parts.append(_image_part(part, f"{where}[{j}]"))
        elif kind == "input_file":
            raise _unsupported("File inputs ('input_file') are not supported by this gateway; send the file's "
                               "text as 'input_text'.", f"{where}[{j}].type")
        else:
            raise _unsupported(f"Content parts of type {kind!r} are not supported; use 'input_text' or "
                               "'input_image'.", f"{where}[{j}].type")
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]  # a plain string: every chat upstream takes that
    return parts


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role not in ROLES:
        raise _invalid(f"Invalid value for '{where}.role': {role!r}. Supported: {', '.join(sorted(ROLES))}.",
                       f"{where}.role")
    content = item.get("content")
    if content is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.content'.", code="missing_required_parameter",
                             param=f"{where}.content")
    if role == "assistant":
        if isinstance(content, list):
            content = _text_of_parts(content, f"{where}.content", {"output_text", "input_text", "refusal"})
        return {"role": "assistant", "content": _string(content, f"{where}.content")}
    return {"role": role, "content": _user_content(content, f"{where}.content")}


def _function_call(item: dict, where: str) -> dict:
    call = {name: _string(item.get(name), f"{where}.{name}") for name in ("call_id", "name", "arguments")}
    return {"id": call["call_id"], "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]}}


def _function_output(item: dict, where: str) -> dict:
    output = item.get("output")
    if isinstance(output, list):
        output = _text_of_parts(output, f"{where}.output", {"input_text", "output_text"})
    return {"role": "tool", "tool_call_id": _string(item.get("call_id"), f"{where}.call_id"),
            "content": _string(output, f"{where}.output")}


def messages_of(items: list, param: str = "input") -> list[dict]:
    """Responses input items as chat messages. Function calls join the assistant turn they
    follow (several calls in a row are one turn's parallel calls)."""
    messages: list[dict] = []
    for i, item in enumerate(items):
        where = f"{param}[{i}]"
        if not isinstance(item, dict):
            raise _type_error(where, "an input item object")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = _function_call(item, where)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(_function_output(item, where))
        else:
            raise _unsupported(f"Input items of type {kind!r} cannot be sent to this gateway's upstreams; "
                               "supported: 'message', 'function_call', 'function_call_output'.", f"{where}.type")
    return messages


def input_items_of(value) -> list:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise _type_error("input", "a string or an array of input items")
    return value


# -- the other fields ---------------------------------------------------------------


def _tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        raise _type_error("tools", "an array of tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _type_error(where, "a tool object")
        if tool.get("type") != "function":
            raise _unsupported(f"Tools of type {tool.get('type')!r} are not supported by this gateway; only "
                               "'function' tools are (the upstream runs no hosted tools).", f"{where}.type")
        function = {"name": _string(tool.get("name"), f"{where}.name")}
        for name in ("description", "parameters", "strict"):
            if tool.get(name) is not None:
                function[name] = tool[name]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice):
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": _string(choice.get("name"), "tool_choice.name")}}
    raise _unsupported("'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", "
                       "\"name\": ...}.", "tool_choice")


def _response_format(text) -> dict | None:
    if not isinstance(text, dict):
        raise _type_error("text", "an object")
    form = text.get("format")
    if form is None or (isinstance(form, dict) and form.get("type") == "text"):
        return None
    if not isinstance(form, dict):
        raise _type_error("text.format", "an object")
    if form.get("type") == "json_object":
        return {"type": "json_object"}
    if form.get("type") == "json_schema":
        schema = {"name": _string(form.get("name"), "text.format.name"), "schema": form.get("schema")}
        if not isinstance(schema["schema"], dict):
            raise _type_error("text.format.schema", "a JSON Schema object")
        for name in ("description", "strict"):
            if form.get(name) is not None:
                schema[name] = form[name]
        return {"type": "json_schema", "json_schema": schema}
    raise _invalid(f"Invalid value for 'text.format.type': {form.get('type')!r}. Supported: 'text', "
                   "'json_object', 'json_schema'.", "text.format.type")


def _metadata(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _type_error("metadata", "an object of string values")
    if len(value) > METADATA_MOST_PAIRS:
        raise _invalid(f"'metadata' may have at most {METADATA_MOST_PAIRS} pairs.", "metadata")
    return value


def _optional_bool(body: dict, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _type_error(name, "a boolean")
    return value


def _check_fields(body: dict) -> None:
    for name in body:
        if name not in ACCEPTED and name not in PASSED_THROUGH:
            raise InvalidRequest(f"Unknown or unsupported parameter: '{name}'.", code="unknown_parameter", param=name)
    if _optional_bool(body, "background", False):
        raise _unsupported("Background responses are not supported by this gateway.", "background")
    if body.get("truncation") not in (None, "disabled", "auto"):
        raise _invalid("'truncation' must be 'disabled' or 'auto'.", "truncation")
    if body.get("include") is not None and not isinstance(body["include"], list):
        raise _type_error("include", "an array of strings")
    if body.get("reasoning") is not None and not isinstance(body["reasoning"], dict):
        raise _type_error("reasoning", "an object")
    _optional_bool(body, "parallel_tool_calls", True)


def parse_responses_request(body: dict, earlier_items: list | None = None) -> ResponsesRequest:
    """`earlier_items`: the stored conversation `previous_response_id` names (its input and
    output items), already looked up for the caller's organization."""
    _check_fields(body)
    if body.get("input") is None and not earlier_items:
        raise InvalidRequest("Missing required parameter: 'input'.", code="missing_required_parameter", param="input")
    new_items = input_items_of(body["input"]) if body.get("input") is not None else []
    items = list(earlier_items or ()) + new_items
    messages = messages_of(earlier_items or (), "previous_response_id") + messages_of(new_items)
    instructions = body.get("instructions")
    if instructions is not None:
        messages.insert(0, {"role": "system", "content": _string(instructions, "instructions")})
    chat = {"model": body.get("model"), "messages": messages}
    for name in ("temperature", "top_p", "stream", *PASSED_THROUGH):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        response_format = _response_format(body["text"])
        if response_format:
            chat["response_format"] = response_format
        if body["text"].get("verbosity") is not None:
            chat["verbosity"] = body["text"]["verbosity"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    try:
        parsed = parse_chat_request(chat)
    except InvalidRequest as e:
        # Said in the caller's words: the chat names are the gateway's own.
        if e.param == "max_tokens":
            e.param, e.message = "max_output_tokens", e.message.replace("max_tokens", "max_output_tokens")
        elif e.param and e.param.startswith("messages"):
            e.param, e.message = "input", "'input' must hold at least one message or item."
        raise
    if parsed.max_tokens is not None and parsed.max_tokens > MAX_OUTPUT_TOKENS:
        raise _invalid("'max_output_tokens' is too large.", "max_output_tokens")
    return ResponsesRequest(
        model=parsed.model, body=parsed.body, stream=parsed.stream, max_tokens=parsed.max_tokens,
        input_items=items, store=_optional_bool(body, "store", True), echo=_echo(body),
    )


def _echo(body: dict) -> dict:
    """The request's fields as OpenAI's response object repeats them."""
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    reasoning = body.get("reasoning") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": _metadata(body.get("metadata")),
        "parallel_tool_calls": _optional_bool(body, "parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, **({"verbosity": text["verbosity"]}
                                                                      if text.get("verbosity") else {})},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
