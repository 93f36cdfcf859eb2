"""The shapes of /v1 as JSON Schema components of the OpenAPI description (openapi.py):
written by hand because the views read raw JSON, not DRF serializers."""


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


# -- components ------------------------------------------------------------------------

ROLES = ["system", "developer", "user", "assistant", "tool", "function"]

SCHEMAS = {
    "ErrorEnvelope": {
        "type": "object",
        "description": "Every error on /v1: OpenAI's envelope plus the request id (also sent as x-request-id).",
        "required": ["error", "request_id"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "additionalProperties": False,
                "properties": {
                    "message": {"type": "string", "description": "Human-readable; never a stack trace or a key."},
                    "type": {"type": "string", "description": "invalid_request_error, insufficient_quota, "
                             "requests, tokens, api_error, or an upstream's own type."},
                    "param": {"type": "string", "nullable": True,
                              "description": "The offending request field, e.g. `messages[0].role`."},
                    "code": {"type": "string", "nullable": True, "description": "Machine-readable reason."},
                },
            },
            "request_id": {"type": "string", "format": "uuid"},
        },
    },
    "ContentPart": {
        "type": "object",
        "description": "A content part such as {type: text, text} or {type: image_url, image_url: {url}}.",
        "required": ["type"],
        "additionalProperties": True,
        "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
    },
    "ChatMessage": {
        "type": "object",
        "description": "`content` is required except on an assistant turn that calls tools "
                       "(`tool_calls` or the legacy `function_call`). Other fields pass through.",
        "required": ["role"],
        "additionalProperties": True,
        "properties": {
            "role": {"type": "string", "enum": ROLES},
            "content": {
                "nullable": True,
                "oneOf": [{"type": "string"}, {"type": "array", "items": ref("ContentPart")}],
            },
            "name": {"type": "string"},
            "tool_calls": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            "tool_call_id": {"type": "string"},
        },
        "anyOf": [
            {"required": ["content"], "properties": {
                "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": ref("ContentPart")}]}}},
            {"required": ["role", "tool_calls"], "properties": {
                "role": {"type": "string", "enum": ["assistant"]},
                "tool_calls": {"type": "array", "minItems": 1, "items": {"type": "object"}}}},
            {"required": ["role", "function_call"], "properties": {
                "role": {"type": "string", "enum": ["assistant"]},
                "function_call": {"type": "object", "minProperties": 1}}},
        ],
    },
    "ChatCompletionRequest": {
        "type": "object",
        "description": "OpenAI's chat completion request. The gateway checks the fields below; every "
                       "other field (tools, tool_choice, response_format, seed, stop, logprobs, user, "
                       "...) passes through unchanged to an OpenAI-protocol upstream.",
        "required": ["model", "messages"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1, "pattern": "\\S",
                      "description": "`provider:modelId` as listed by GET /v1/models, or an alias. "
                                     "The answer's `model` echoes it exactly."},
            "messages": {"type": "array", "minItems": 1, "items": ref("ChatMessage")},
            "stream": {"type": "boolean", "nullable": True, "default": False,
                       "description": "true: answer with text/event-stream."},
            "stream_options": {"type": "object", "nullable": True, "additionalProperties": True,
                               "properties": {"include_usage": {"type": "boolean"}},
                               "description": "Honoured; the final usage chunk is sent whatever it says."},
            "max_tokens": {"type": "integer", "minimum": 1, "nullable": True},
            "max_completion_tokens": {"type": "integer", "minimum": 1, "nullable": True,
                                      "description": "The largest cap sent is reserved, and sent upstream in each cap field."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "nullable": True},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
            "n": {"type": "integer", "minimum": 1, "nullable": True},
            "tools": {"type": "array", "items": {"type": "object", "additionalProperties": True},
                      "description": "Passed through (translated for Anthropic upstreams)."},
            "tool_choice": {"description": "Passed through.",
                            "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}]},
            "response_format": {"type": "object", "additionalProperties": True, "description": "Passed through."},
            "seed": {"type": "integer", "description": "Passed through."},
            "stop": {"description": "Passed through.",
                     "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "user": {"type": "string", "description": "Passed through."},
        },
    },
    "Usage": {
        "type": "object",
        "required": ["prompt_tokens", "total_tokens"],
        "additionalProperties": True,
        "properties": {
            "prompt_tokens": {"type": "integer", "minimum": 0},
            "completion_tokens": {"type": "integer", "minimum": 0},
            "total_tokens": {"type": "integer", "minimum": 0},
            "cost": {"type": "number", "minimum": 0,
                     "description": "USD charged for this request, with its exact decimal digits."},
            "prompt_tokens_details": {"type": "object", "additionalProperties": True},
            "completion_tokens_details": {"type": "object", "additionalProperties": True},
        },
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "additionalProperties": True,
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string", "description": "Exactly what the caller sent."},
            "choices": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": True,
                "properties": {
                    "index": {"type": "integer"},
                    "message": {"type": "object", "additionalProperties": True, "properties": {
                        "role": {"type": "string"},
                        "content": {"type": "string", "nullable": True},
                        "tool_calls": {"type": "array", "items": {"type": "object"}},
                    }},
                    "finish_reason": {"type": "string", "nullable": True},
                },
            }},
            "usage": ref("Usage"),
        },
    },
    "ServerSentEvent": {
        "type": "object",
        "description": "One event of a text/event-stream answer (each `data: ...` line pair; the way "
                       "OpenAPI 3.2's itemSchema describes a stream). `data` is one "
                       "chat.completion.chunk as JSON; the last chunk has `choices: []` and `usage` "
                       "with `cost`; then `data: [DONE]`. If the upstream fails after the first byte, "
                       "the last event's data is an ErrorEnvelope instead and no [DONE] follows.",
        "required": ["data"],
        "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
    },
    "EmbeddingRequest": {
        "type": "object",
        "description": "OpenAI's embedding request; other fields (encoding_format, dimensions, user) pass through.",
        "required": ["model", "input"],
        "additionalProperties": True,
        "properties": {
            "model": {"type": "string", "minLength": 1, "pattern": "\\S", "description": "`provider:modelId`."},
            "input": {"oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                {"type": "array", "minItems": 1,
                 "items": {"type": "array", "minItems": 1, "items": {"type": "integer"}}},
            ]},
            "encoding_format": {"type": "string", "description": "Passed through."},
            "dimensions": {"type": "integer", "description": "Passed through."},
        },
    },
    "EmbeddingList": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "additionalProperties": True,
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": {
                "type": "object",
                "required": ["object", "index", "embedding"],
                "properties": {
                    "object": {"type": "string", "enum": ["embedding"]},
                    "index": {"type": "integer"},
                    "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}},
                                            {"type": "string", "description": "base64, if asked for"}]},
                },
            }},
            "model": {"type": "string", "description": "Exactly what the caller sent."},
            "usage": ref("Usage"),
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string", "description": "`provider:modelId`"},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string", "description": "The provider's slug."},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": ref("Model")}},
    },
}
