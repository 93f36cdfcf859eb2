"""Translating between OpenAI's chat format and Anthropic's Messages API."""

import json
import time

from ...api.errors import InvalidRequest
from .base import Usage

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "pause_turn": "stop", "refusal": "content_filter"}
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when neither caller nor catalog sets one


def _image_block(url: str) -> dict:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise InvalidRequest("An image_url part needs a url.", code="invalid_value", param="messages")
            blocks.append(_image_block(url))
        else:
            raise InvalidRequest(f"Content parts of type '{kind}' are not supported for this model.",
                                 code="invalid_value", param="messages")
    return blocks


def _text_of(content) -> str:
    return "".join(b["text"] for b in _content_blocks(content) if b["type"] == "text")


def _tool_use_blocks(message: dict) -> list[dict]:
    blocks = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            raise InvalidRequest("A tool call's arguments must be a JSON object.", code="invalid_value",
                                 param="messages")
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments})
    return blocks


def _messages(openai_messages: list) -> tuple[list[dict], list[dict]]:
    """(system blocks, alternating user/assistant messages); consecutive turns of one role
    are merged, since Anthropic requires the roles to alternate."""
    system, messages = [], []
    for message in openai_messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(b for b in _content_blocks(message.get("content")) if b["type"] == "text")
            continue
        if role in ("tool", "function"):
            role, blocks = "user", [{"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                                     "content": _text_of(message.get("content"))}]
        elif role == "assistant":
            blocks = _content_blocks(message.get("content")) + _tool_use_blocks(message)
        else:
            blocks = _content_blocks(message.get("content"))
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    return system, messages


def _tools(tools) -> list[dict]:
    out = []
    for tool in tools:
        function = tool.get("function") or {}
        spec = {"name": function.get("name"), "input_schema": function.get("parameters") or {"type": "object"}}
        if function.get("description"):
            spec["description"] = function["description"]
        out.append(spec)
    return out


def _tool_choice(choice):
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return None


# Chat fields the translation below carries, and hints Anthropic has no use for (it caches
# by cache_control and identifies end users by metadata.user_id, which "user" becomes).
_TRANSLATED = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
               "top_p", "top_k", "stop", "tools", "tool_choice", "parallel_tool_calls", "user"}
_HINTS = {"prompt_cache_key", "safety_identifier"}


def _check_expressible(body: dict) -> None:
    """What would change the answer but cannot be said to Anthropic (JSON mode, several
    choices, log probabilities, penalties, a seed, a reasoning effort...) is a 400 naming
    the field, never dropped on the way."""
    for name, value in body.items():
        if value is None or name in _TRANSLATED or name in _HINTS:
            continue
        if name == "n" and value == 1:
            continue
        if name == "logprobs" and value is False:
            continue
        raise InvalidRequest(f"'{name}' is not supported by this model's provider (Anthropic).",
                             code="unsupported_parameter", param=name)


def to_anthropic(route, chat) -> dict:
    body = chat.body
    _check_expressible(body)
    system, messages = _messages(body["messages"])
    request = {
        "model": route.upstream_model,
        "messages": messages,
        "max_tokens": chat.max_tokens or route.max_output_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        request["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            request[name] = body[name]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        request["tools"] = _tools(body["tools"])
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and (choice or {}).get("type") != "none":
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice:
            request["tool_choice"] = choice
    if isinstance(body.get("user"), str):
        request["metadata"] = {"user_id": body["user"]}
    if chat.stream:
        request["stream"] = True
    return request


def usage_from_anthropic(usage: dict, previous: Usage | None = None) -> Usage:
    """Anthropic counts the prompt in three parts: input_tokens (neither read from nor
    written to the cache), cache_read_input_tokens and cache_creation_input_tokens. The
    gateway's prompt_tokens is their sum (OpenAI's convention), with the cached part in
    cached_tokens and the cache write in cache_write_tokens. A stream's message_delta
    carries cumulative counts, and only those that apply: what it leaves out stays as
    message_start said."""
    def count(name: str, before: int) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else before

    before = previous or Usage(0, 0)
    read = count("cache_read_input_tokens", before.cached_tokens)
    created = count("cache_creation_input_tokens", before.cache_write_tokens)
    uncached = count("input_tokens", before.prompt_tokens - before.cached_tokens - before.cache_write_tokens)
    return Usage(prompt_tokens=uncached + read + created, completion_tokens=count("output_tokens", 0),
                 cached_tokens=read, cache_write_tokens=created)


def anthropic_usage(usage: Usage) -> dict:
    """The gateway's usage in Anthropic's three prompt parts (usage_from_anthropic undone)."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    return {"input_tokens": usage.prompt_tokens - cached - written, "output_tokens": usage.completion_tokens,
            "cache_creation_input_tokens": written, "cache_read_input_tokens": cached}


def from_anthropic(answer: dict) -> tuple[dict, Usage]:
    text, tool_calls = [], []
    for block in answer.get("content") or ():
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append({"id": block.get("id"), "type": "function",
                               "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input", {}))}})
    message = {"role": "assistant", "content": "".join(text) if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = usage_from_anthropic(answer.get("usage") or {})
    body = {
        "id": answer.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": FINISH_REASONS.get(answer.get("stop_reason"), "stop")}],
        "usage": usage.as_openai(),
    }
    return body, usage


class StreamTranslator:
    """Anthropic's stream events in, chat.completion.chunk dicts out."""

    def __init__(self):
        self.base = {"id": None, "object": "chat.completion.chunk", "created": int(time.time()), "model": None}
        self.usage: Usage | None = None
        self.tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self.finish_reason = None

    def _chunk(self, delta: dict | None, finish_reason=None, **extra) -> dict:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        return {**self.base, "choices": choices, **extra}

    def translate(self, event: dict) -> list[dict]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.base["id"], self.base["model"] = message.get("id"), message.get("model")
            self.usage = usage_from_anthropic(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(event.get("index", 0), len(self.tool_index))
                return [self._chunk({"tool_calls": [{"index": index, "id": block.get("id"), "type": "function",
                                                     "function": {"name": block.get("name"), "arguments": ""}}]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(event.get("index", 0), 0)
                return [self._chunk({"tool_calls": [{"index": index,
                                                     "function": {"arguments": delta.get("partial_json", "")}}]})]
            return []
        if kind == "message_delta":
            self.usage = usage_from_anthropic(event.get("usage") or {}, previous=self.usage)
            self.finish_reason = FINISH_REASONS.get((event.get("delta") or {}).get("stop_reason"), "stop")
            return [self._chunk({}, self.finish_reason)]
        if kind == "message_stop":
            return [self._chunk(None, usage=(self.usage or Usage(0, 0)).as_openai())]
        return []  # ping, content_block_stop, and event types added after this was written
