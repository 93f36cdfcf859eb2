"""Token estimates for when no tokenizer answer is available.

The gateway cannot ship every provider's tokenizer (and cannot download one at run time),
so it counts the way BPE tokenizers behave on ordinary text: a word is about one token,
long words and non-Latin text cost more, punctuation is a token of its own.
"""

import re

_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators around each message, as OpenAI counts
REPLY_PRIMER_TOKENS = 3


def estimate_text_tokens(text: str) -> int:
    tokens = 0
    for piece in _PIECE.findall(text):
        # About 4 bytes per token for long words and for multi-byte scripts.
        tokens += max(1, (len(piece.encode()) + 3) // 4) if len(piece) > 4 else 1
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
