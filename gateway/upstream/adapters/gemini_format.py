"""Translating between OpenAI's chat format and Google's Generative Language API
(generateContent), both ways, streams included.

What the chat format says and Gemini cannot hear is refused with a 400 naming the field,
never dropped on the way.
"""

import json
import mimetypes
import time
import uuid

from ...api.errors import InvalidRequest
from .base import Usage, _count

FINISH_REASONS = {
    "STOP": "stop", "MAX_TOKENS": "length",
    **dict.fromkeys(("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                     "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"), "content_filter"),
}
TOOL_CHOICES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# Fields of a chat request that need no Gemini counterpart: stream_options (a stream always
# ends with usage here) and user (Gemini has no end-user field; nothing depends on it).
# Not sent: what the request says elsewhere, and hints Gemini has no use for (its caching
# is implicit; it has no end-user identifier).
_NOT_SENT = {"model", "messages", "stream", "stream_options", "user", "max_tokens", "max_completion_tokens",
             "prompt_cache_key", "safety_identifier"}
_SAMPLING = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "seed": "seed",
             "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty"}
_TRANSLATED = {"stop", "n", "tools", "tool_choice", "parallel_tool_calls", "response_format", "logprobs"}
# Gemini 3 signs its function calls and refuses a conversation that returns one unsigned;
# the signature rides in the tool call id the caller echoes back. A call made elsewhere
# (another model, a rebuilt history) gets the placeholder Google documents for that case.
SIGNATURE_MARK = "__thought__"
FOREIGN_CALL_SIGNATURE = "skip_thought_signature_validator"


def _unsupported(name: str, why: str = "") -> InvalidRequest:
    return InvalidRequest(f"'{name}' is not supported by this model's provider (Gemini){why}.",
                          code="unsupported_parameter", param=name)


def _data_url(url: str, param: str) -> dict:
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise InvalidRequest("A data URL must be base64-encoded (data:<type>;base64,...).", code="invalid_value",
                             param=param)
    return {"inlineData": {"mimeType": header[5:].split(";")[0] or "application/octet-stream", "data": data}}


def _media(url, param: str) -> dict:
    if not isinstance(url, str) or not url:
        raise InvalidRequest("An image_url part needs a url.", code="invalid_value", param=param)
    if url.startswith("data:"):
        return _data_url(url, param)
    file_data = {"fileUri": url}
    mime_type = mimetypes.guess_type(url.split("?")[0])[0]
    if mime_type:
        file_data["mimeType"] = mime_type
    return {"fileData": file_data}


def _part(part: dict) -> dict:
    kind = part.get("type")
    if kind == "text":
        return {"text": part.get("text") or ""}
    if kind == "image_url":
        image = part.get("image_url")
        return _media(image.get("url") if isinstance(image, dict) else image, "messages")
    if kind == "input_audio":
        audio = part.get("input_audio") if isinstance(part.get("input_audio"), dict) else {}
        return {"inlineData": {"mimeType": f"audio/{audio.get('format') or 'wav'}", "data": audio.get("data") or ""}}
    if kind == "file":
        data = (part.get("file") or {}).get("file_data") if isinstance(part.get("file"), dict) else None
        if isinstance(data, str) and data.startswith("data:"):
            return _data_url(data, "messages")
        raise InvalidRequest("A file part needs its content as a data URL in file.file_data for this model.",
                             code="invalid_value", param="messages")
    raise InvalidRequest(f"Content parts of type '{kind}' are not supported for this model.", code="invalid_value",
                         param="messages")


def _parts(content) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [_part(part) for part in content]


def _text_of(content) -> str:
    return "".join(p["text"] for p in _parts(content) if "text" in p)


def _function_call_parts(message: dict) -> list[dict]:
    parts = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest("A tool call needs a function with a name.", code="invalid_value", param="messages")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise InvalidRequest("A tool call's arguments must be a JSON object.", code="invalid_value",
                                 param="messages")
        _, mark, signature = str(call.get("id") or "").partition(SIGNATURE_MARK)
        parts.append({"functionCall": {"name": function["name"], "args": arguments},
                      "thoughtSignature": signature if mark and signature else FOREIGN_CALL_SIGNATURE})
    return parts


def _function_response(message: dict, names: dict[str, str]) -> dict:
    """A tool message as a functionResponse, named after the call it answers (Gemini
    matches results to calls by name, the chat format by id)."""
    name = names.get(message.get("tool_call_id")) if message["role"] == "tool" else message.get("name")
    if not isinstance(name, str):
        raise InvalidRequest("A tool message must answer a tool call made in an earlier assistant message "
                             "(its tool_call_id).", code="invalid_value", param="messages")
    text = _text_of(message.get("content"))
    try:
        result = json.loads(text)
    except ValueError:
        result = None
    return {"functionResponse": {"name": name, "response": result if isinstance(result, dict) else {"output": text}}}


def _contents(messages: list) -> tuple[list[dict], list[dict]]:
    """(system instruction parts, contents); consecutive turns of one role are merged, so
    the results of parallel calls go back together as Gemini expects."""
    system, contents, names = [], [], {}
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            parts = _parts(message.get("content"))
            if any("text" not in p for p in parts):
                raise InvalidRequest("A system message may only hold text for this model.", code="invalid_value",
                                     param="messages")
            system.extend(parts)
            continue
        if role in ("tool", "function"):
            role, parts = "user", [_function_response(message, names)]
        elif role == "assistant":
            role, parts = "model", _parts(message.get("content")) + _function_call_parts(message)
            names.update((c.get("id"), c["function"]["name"]) for c in message.get("tool_calls") or ())
        else:
            parts = _parts(message.get("content"))
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _function_declarations(tools) -> list[dict]:
    declarations = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise _unsupported("tools", ": only function tools are")
        function = tool.get("function") if isinstance(tool.get("function"), dict) else {}
        if not isinstance(function.get("name"), str):
            raise InvalidRequest("A function tool needs a name.", code="invalid_value", param="tools")
        declaration = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            # JSON Schema as OpenAI callers write it; `parameters` would want Google's subset.
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return declarations


def _tool_config(choice) -> dict:
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        return {"functionCallingConfig": {"mode": TOOL_CHOICES[choice]}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}}
    raise _unsupported("tool_choice", ": use auto, none, required or one named function")


def _response_format(value) -> dict:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    schema = (value.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    if isinstance(schema, dict):
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise _unsupported("response_format", ": use text, json_object or json_schema with a schema")


def _check_expressible(body: dict) -> None:
    for name, value in body.items():
        if value is not None and name not in _NOT_SENT and name not in _SAMPLING and name not in _TRANSLATED:
            raise _unsupported(name)
    if body.get("n") not in (None, 1):
        raise _unsupported("n", " with a value other than 1")
    if body.get("logprobs"):
        raise _unsupported("logprobs")
    if body.get("parallel_tool_calls") is False:
        raise _unsupported("parallel_tool_calls", ": Gemini may always call several functions at once")


def to_gemini(route, chat) -> dict:
    """A generateContent body for a checked chat request."""
    body = chat.body
    _check_expressible(body)
    system, contents = _contents(body["messages"])
    request = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    # The cap is always sent: the reservation was made for it (n is 1 here).
    config = {"maxOutputTokens": chat.output_bound(route.max_output_tokens)}
    config.update((google, body[name]) for name, google in _SAMPLING.items() if body.get(name) is not None)
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("response_format") is not None:
        config.update(_response_format(body["response_format"]))
    request["generationConfig"] = config
    if body.get("tools"):
        request["tools"] = [{"functionDeclarations": _function_declarations(body["tools"])}]
        if body.get("tool_choice") is not None:
            request["toolConfig"] = _tool_config(body["tool_choice"])
    elif body.get("tool_choice") not in (None, "none", "auto"):
        raise InvalidRequest("'tool_choice' needs 'tools'.", code="invalid_value", param="tool_choice")
    return request


def usage_from_gemini(metadata) -> Usage | None:
    """Gemini's prompt count includes the cached part, as OpenAI's does; its thinking is
    counted apart from the candidates, and is output all the same (billed so)."""
    if not isinstance(metadata, dict):
        return None
    prompt = _count(metadata.get("promptTokenCount"))
    if prompt is None:
        return None  # a stream reports its counts only in its last events
    thoughts = _count(metadata.get("thoughtsTokenCount")) or 0
    return Usage(
        prompt_tokens=prompt + (_count(metadata.get("toolUsePromptTokenCount")) or 0),
        completion_tokens=(_count(metadata.get("candidatesTokenCount")) or 0) + thoughts,
        cached_tokens=min(_count(metadata.get("cachedContentTokenCount")) or 0, prompt),
        reasoning_tokens=thoughts,
    )


def _tool_call(call: dict, signature) -> dict:
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    if isinstance(signature, str) and signature:
        call_id += SIGNATURE_MARK + signature
    args = call.get("args") if isinstance(call.get("args"), dict) else {}
    return {"id": call_id, "type": "function",
            "function": {"name": str(call.get("name") or ""), "arguments": json.dumps(args)}}


def _read_candidate(answer: dict) -> tuple[str, list[dict], str | None]:
    """(text, tool calls, finish reason) of the first candidate; thoughts are not answer text."""
    candidates = answer.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates else None
    if not isinstance(candidate, dict):
        blocked = isinstance(answer.get("promptFeedback"), dict) and answer["promptFeedback"].get("blockReason")
        return "", [], "content_filter" if blocked else None
    content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
    text, calls = [], []
    for part in content.get("parts") or ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            text.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(part["functionCall"], part.get("thoughtSignature")))
    reason = candidate.get("finishReason")
    finish = None if not reason else FINISH_REASONS.get(reason, "stop")
    return "".join(text), calls, finish


def _completion_id(answer: dict) -> str:
    return f"chatcmpl-{answer.get('responseId') or uuid.uuid4().hex}"


def from_gemini(answer: dict, upstream_model: str) -> tuple[dict, Usage | None]:
    text, calls, finish = _read_candidate(answer)
    message = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
        finish = "tool_calls" if finish in (None, "stop") else finish  # Gemini says STOP after calling
    usage = usage_from_gemini(answer.get("usageMetadata"))
    body = {
        "id": _completion_id(answer),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("modelVersion") or upstream_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish or "stop"}],
    }
    if usage is not None:
        body["usage"] = usage.as_openai()
    return body, usage


class StreamTranslator:
    """streamGenerateContent's events (each a partial GenerateContentResponse) in,
    chat.completion.chunk dicts out. The stream has no end marker: it is complete once an
    event has carried a finishReason."""

    def __init__(self, upstream_model: str):
        self.base = {"id": None, "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": upstream_model}
        self.usage: Usage | None = None
        self.tool_calls = 0
        self.finish_reason: str | None = None

    def _chunk(self, delta: dict, finish_reason=None) -> dict:
        return {**self.base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    def translate(self, event: dict) -> list[dict]:
        out = []
        if self.base["id"] is None:
            self.base["id"] = _completion_id(event)
            self.base["model"] = event.get("modelVersion") or self.base["model"]
            out.append(self._chunk({"role": "assistant", "content": ""}))
        self.usage = usage_from_gemini(event.get("usageMetadata")) or self.usage
        text, calls, finish = _read_candidate(event)
        if text:
            out.append(self._chunk({"content": text}))
        if calls:
            for call in calls:
                call["index"] = self.tool_calls
                self.tool_calls += 1
            out.append(self._chunk({"tool_calls": calls}))
        if finish and self.finish_reason is None:
            self.finish_reason = "tool_calls" if self.tool_calls and finish == "stop" else finish
            out.append(self._chunk({}, self.finish_reason))
        return out

    def end(self) -> list[dict]:
        """The chunk with usage, once the stream is over (None of it reported: none)."""
        return [] if self.usage is None else [{**self.base, "choices": [], "usage": self.usage.as_openai()}]
