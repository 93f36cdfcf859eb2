"""Token estimates for when no tokenizer answer is available.

The gateway cannot ship every provider's tokenizer (and cannot download one at run time),
so it counts the way BPE tokenizers behave on ordinary text: a word is about one token,
long words and non-Latin text cost more, punctuation is a token of its own.
"""

import json
import re

_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators around each message, as OpenAI counts
REPLY_PRIMER_TOKENS = 3


def estimate_text_tokens(text: str) -> int:
    tokens = 0
    for piece in _PIECE.findall(text):
        size = len(piece.encode())
        # Short common words are one token; beyond that about 4 bytes a token, which
        # also covers multi-byte scripts (3 bytes a character, about a token each).
        tokens += 1 if size <= 6 else (size + 3) // 4
    return tokens


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(messages: list) -> int:
    total = REPLY_PRIMER_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(_content_text(message.get("content")))
        if message.get("tool_calls"):
            total += estimate_text_tokens(str(message["tool_calls"]))
    return total


def last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


IMAGE_TOKENS_BOUND = 2000  # a high-detail image costs OpenAI and Anthropic well under this


def prompt_tokens_bound(body: dict, context_window: int | None) -> int:
    """An upper bound on the prompt's tokens, for reserving money before the call.

    A byte-level BPE token is at least one byte of text, so the UTF-8 size of the text the
    model reads bounds its token count; images count a fixed amount, not their bytes."""
    size = 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            size += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if part.get("type") in ("image_url", "image", "input_image"):
                    size += IMAGE_TOKENS_BOUND
                else:
                    size += len(json.dumps(part, ensure_ascii=False).encode())
        size += MESSAGE_OVERHEAD_TOKENS
        for extra in ("tool_calls", "name", "function_call"):
            if message.get(extra):
                size += len(json.dumps(message[extra], ensure_ascii=False).encode())
    for field in ("tools", "functions", "response_format"):
        if body.get(field):
            size += len(json.dumps(body[field], ensure_ascii=False).encode())
    size += REPLY_PRIMER_TOKENS
    return min(size, context_window) if context_window else size

