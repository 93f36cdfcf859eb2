"""The shapes of /v1/responses as JSON Schema components of the OpenAPI description
(openapi.py adds them beside openapi_schemas' own)."""


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_ITEM = {"type": "object", "additionalProperties": True, "required": ["type"],
         "properties": {"type": {"type": "string"}, "id": {"type": "string"}}}

RESPONSES_SCHEMAS = {
    "ResponseInputItem": {
        "type": "object",
        "description": "A `message` (`role` user, assistant, system or developer; `content` a string or "
                       "`input_text` / `input_image` / `output_text` parts), a `function_call` (`call_id`, "
                       "`name`, `arguments`) or a `function_call_output` (`call_id`, `output`). Other item "
                       "types are a 400.",
        "additionalProperties": True,
        "properties": {
            "type": {"type": "string", "enum": ["message", "function_call", "function_call_output"],
                     "default": "message"},
            "role": {"type": "string", "enum": ["user", "assistant", "system", "developer"]},
            "content": {"oneOf": [{"type": "string"},
                                  {"type": "array", "items": {"type": "object", "additionalProperties": True,
                                                              "required": ["type"]}}]},
            "call_id": {"type": "string"}, "name": {"type": "string"}, "arguments": {"type": "string"},
            "output": {"type": "string"},
        },
    },
    "ResponseCreateRequest": {
        "type": "object",
        "description": "OpenAI's Responses request, translated to a chat request for any upstream. A field "
                       "the upstream cannot be told (a hosted tool, a file input, background) is a 400 "
                       "naming it, as is any field not listed here.",
        "required": ["model"],
        "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "minLength": 1, "pattern": "\\S",
                      "description": "`provider:modelId`; the answer's `model` echoes it."},
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": ref("ResponseInputItem")}],
                      "description": "Required unless previous_response_id is given."},
            "instructions": {"type": "string", "nullable": True},
            "tools": {"type": "array", "items": {
                "type": "object", "required": ["type", "name"], "additionalProperties": True,
                "properties": {"type": {"type": "string", "enum": ["function"]}, "name": {"type": "string"},
                               "description": {"type": "string"}, "parameters": {"type": "object"},
                               "strict": {"type": "boolean"}}}},
            "tool_choice": {"oneOf": [{"type": "string", "enum": ["none", "auto", "required"]},
                                      {"type": "object", "required": ["type", "name"],
                                       "properties": {"type": {"type": "string", "enum": ["function"]},
                                                      "name": {"type": "string"}}}]},
            "parallel_tool_calls": {"type": "boolean", "nullable": True},
            "max_output_tokens": {"type": "integer", "minimum": 1, "nullable": True,
                                  "description": "Reserved at admission and sent upstream."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "nullable": True},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
            "text": {"type": "object", "properties": {"format": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]}}},
                "verbosity": {"type": "string"}}},
            "reasoning": {"type": "object", "nullable": True,
                          "properties": {"effort": {"type": "string", "nullable": True},
                                         "summary": {"type": "string", "nullable": True}}},
            "metadata": {"type": "object", "nullable": True, "maxProperties": 16,
                         "additionalProperties": {"type": "string"}},
            "store": {"type": "boolean", "nullable": True, "default": True},
            "previous_response_id": {"type": "string", "nullable": True},
            "stream": {"type": "boolean", "nullable": True, "default": False},
            "stream_options": {"type": "object", "nullable": True},
            "include": {"type": "array", "nullable": True, "items": {"type": "string"}},
            "truncation": {"type": "string", "enum": ["disabled", "auto"], "nullable": True},
            "background": {"type": "boolean", "nullable": True, "enum": [False, None]},
            "user": {"type": "string"}, "safety_identifier": {"type": "string"},
            "prompt_cache_key": {"type": "string"}, "service_tier": {"type": "string"},
        },
    },
    "ResponseUsage": {
        "type": "object",
        "required": ["input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details",
                     "total_tokens"],
        "additionalProperties": True,
        "properties": {
            "input_tokens": {"type": "integer", "minimum": 0},
            "input_tokens_details": {"type": "object", "properties": {"cached_tokens": {"type": "integer"}}},
            "output_tokens": {"type": "integer", "minimum": 0},
            "output_tokens_details": {"type": "object", "properties": {"reasoning_tokens": {"type": "integer"}}},
            "total_tokens": {"type": "integer", "minimum": 0},
            "cost": {"type": "number", "minimum": 0, "description": "USD charged, with its exact decimal digits."},
        },
    },
    "Response": {
        "type": "object",
        "description": "OpenAI's `response` object; with `stream: true`, the events of ResponseStreamEvent.",
        "required": ["id", "object", "created_at", "status", "model", "output", "tools", "tool_choice",
                     "parallel_tool_calls"],
        "additionalProperties": True,
        "properties": {
            "id": {"type": "string", "pattern": "^resp_"},
            "object": {"type": "string", "enum": ["response"]},
            "created_at": {"type": "integer"},
            "status": {"type": "string", "enum": ["completed", "incomplete", "failed", "in_progress"]},
            "incomplete_details": {"type": "object", "nullable": True,
                                   "properties": {"reason": {"type": "string"}}},
            "error": {"type": "object", "nullable": True},
            "model": {"type": "string", "description": "Exactly what the caller sent."},
            "output": {"type": "array", "items": _ITEM},
            "previous_response_id": {"type": "string", "nullable": True},
            "store": {"type": "boolean"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "tools": {"type": "array", "items": {"type": "object"}},
            "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "parallel_tool_calls": {"type": "boolean"},
            "usage": {"allOf": [ref("ResponseUsage")], "nullable": True},
        },
    },
    "ResponseStreamEvent": {
        "type": "object",
        "description": "One event of a /v1/responses stream: `event: TYPE` and `data: {json}` whose `type` is "
                       "TYPE and `sequence_number` counts from 0. The last is response.completed with the "
                       "whole Response (its status incomplete when capped), or response.failed.",
        "required": ["data"],
        "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
    },
    "ResponseItemList": {
        "type": "object",
        "required": ["object", "data", "has_more", "first_id", "last_id"],
        "additionalProperties": False,
        "properties": {"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": _ITEM},
                       "has_more": {"type": "boolean"}, "first_id": {"type": "string", "nullable": True},
                       "last_id": {"type": "string", "nullable": True}},
    },
    "ResponseDeleted": {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string"}, "object": {"type": "string", "enum": ["response"]},
                       "deleted": {"type": "boolean", "enum": [True]}},
    },
}
