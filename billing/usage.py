"""The one door through which the gateway reports what a request consumed."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

log = logging.getLogger("mixgateway.usage")


@dataclass(frozen=True)
class UsageEvent:
    request_id: str
    organization_id: int
    key_id: int
    model_id: int | None
    model: str  # the public "provider:modelId" that served the request
    stream: bool
    status: str  # completed | client_gone | upstream_error | rejected
    http_status: int
    error_code: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    basis: str  # provider | estimated | partial
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    started_at: datetime
    latency_ms: int
    ttft_ms: int | None


def record_usage(event: UsageEvent) -> None:
    log.info(
        "usage request=%s org=%s key=%s model=%s status=%s prompt=%s completion=%s basis=%s latency_ms=%s ttft_ms=%s",
        event.request_id, event.organization_id, event.key_id, event.model, event.status,
        event.prompt_tokens, event.completion_tokens, event.basis, event.latency_ms, event.ttft_ms,
    )
