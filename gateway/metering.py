"""Timing and token counting for one request, handed to billing exactly once."""

import time
from datetime import UTC, datetime

from billing.usage import UsageEvent, record_usage

from .adapters import Usage
from .catalog import Route
from .chat_request import ChatRequest
from .tokens import estimate_prompt_tokens, estimate_text_tokens


class Meter:
    def __init__(self, request_id: str, key, route: Route, chat: ChatRequest):
        self.request_id = request_id
        self.key = key
        self.route = route
        self.chat = chat
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()
        self._first_byte: float | None = None
        self.relayed_completion_tokens = 0  # counted from what the caller received
        self._recorded = False

    def first_byte(self) -> None:
        if self._first_byte is None:
            self._first_byte = time.perf_counter()

    def count_relayed(self, text: str) -> None:
        if text:
            self.relayed_completion_tokens += estimate_text_tokens(text)

    def estimated_usage(self, basis: str) -> Usage:
        return Usage(
            prompt_tokens=estimate_prompt_tokens(self.chat.body["messages"]),
            completion_tokens=self.relayed_completion_tokens,
            basis=basis,
        )

    def finish(self, status: str, usage: Usage | None, http_status: int = 200, error_code: str | None = None):
        if self._recorded:
            return
        self._recorded = True
        usage = usage or Usage(0, 0, basis="estimated")
        now = time.perf_counter()
        record_usage(UsageEvent(
            request_id=self.request_id,
            organization_id=self.key.organization_id,
            key_id=self.key.key_id,
            model_id=self.route.model_id,
            model=self.route.public_id,
            stream=self.chat.stream,
            status=status,
            http_status=http_status,
            error_code=error_code,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            basis=usage.basis,
            input_per_mtok=self.route.input_per_mtok,
            output_per_mtok=self.route.output_per_mtok,
            cached_input_per_mtok=self.route.cached_input_per_mtok,
            started_at=self.started_at,
            latency_ms=round((now - self._t0) * 1000),
            ttft_ms=round((self._first_byte - self._t0) * 1000) if self._first_byte else None,
        ))
