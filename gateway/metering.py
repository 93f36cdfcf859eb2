"""Money and timing for one request: admit it (rate limits, spend limit, balance) before the
upstream call, settle exactly once however the request ends."""

import time
from datetime import UTC, datetime
from decimal import Decimal

from billing import charging
from billing.money import token_cost, usd

from . import admission, observability
from .adapters import Usage
from .catalog import Route
from .chat_request import ChatRequest
from .errors import InsufficientQuota
from .limits import headers_for, rate_limit_error
from .tokens import estimate_text_tokens


def prices_of(route: Route) -> charging.Prices:
    return charging.Prices(route.input_per_mtok, route.output_per_mtok, route.cached_input_per_mtok)


def cost_of(usage: Usage, route: Route) -> Decimal:
    return token_cost(usage.prompt_tokens, usage.completion_tokens, route.input_per_mtok, route.output_per_mtok,
                      usage.cached_tokens, route.cached_input_per_mtok)


class Meter:
    def __init__(self, request_id: str, key, route: Route, chat: ChatRequest):
        # `chat` may be any request with ChatRequest's billing methods (embeddings too).
        self.request_id = request_id
        self.key = key
        self.route = route
        self.chat = chat
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()
        self._first_byte: float | None = None
        self.relayed_completion_tokens = 0  # counted from what the caller received
        # The answer's text, kept only for organizations whose operator logs content.
        self.completion_text: list[str] | None = [] if key.log_content else None
        self.cost: Decimal | None = None
        self.balance: Decimal | None = None
        self.booked_balance: Decimal | None = None  # known at admission (see admission.Admitted)
        self._settled = False

    def admit(self, chain: list[Route]) -> dict:
        """Count the request against the key's rate limits and hold its worst-case cost on
        any model that may serve it, or refuse it before any upstream call. Returns the
        rate-limit headers for the answer."""
        amount = max(self._worst_case(route) for route in chain)
        try:
            admitted = admission.admit(self.key, self.request_id, amount)
        except admission.RateLimited as e:
            self._settled = True  # nothing was held, nothing to settle
            raise rate_limit_error(self.key, e.window)
        except charging.KeySpendLimitReached:
            self._settled = True
            raise InsufficientQuota(
                f"This API key's spend limit of {usd(self.key.spend_limit)} USD would be passed by this "
                "request. Raise the key's limit in the console, or use another key."
            )
        except charging.InsufficientBalance as e:
            self._settled = True
            raise InsufficientQuota(
                f"Your prepaid balance cannot cover this request: it may cost up to {e.needed} USD and "
                f"{max(e.available, 0)} USD is available. Add credit, or lower max_tokens."
            )
        self.booked_balance = admitted.booked_balance
        window = admitted.window
        return headers_for(self.key.rpm_limit, self.key.tpm_limit, window) if window else {}

    def _worst_case(self, route: Route) -> Decimal:
        return charging.worst_case_cost(self.chat.prompt_bound(route.context_window),
                                        self.chat.output_bound(route.max_output_tokens), prices_of(route))

    def served_by(self, route: Route) -> None:
        """The model that answered: its price is the one charged."""
        self.route = route

    def first_byte(self) -> None:
        if self._first_byte is None:
            self._first_byte = time.perf_counter()

    def count_relayed(self, text: str) -> None:
        if text:
            self.relayed_completion_tokens += estimate_text_tokens(text)
            self.keep_text(text)

    def keep_text(self, text: str) -> None:
        if self.completion_text is not None and text:
            self.completion_text.append(text)

    def estimated_usage(self, basis: str) -> Usage:
        return Usage(
            prompt_tokens=self.chat.prompt_estimate(),
            completion_tokens=self.relayed_completion_tokens,
            basis=basis,
        )

    def finish(self, status: str, usage: Usage | None, http_status: int = 200, error_code: str | None = None):
        """Settle the reservation at the real cost and queue the usage event; once only."""
        if self._settled:
            return
        self._settled = True
        usage = usage or Usage(0, 0, basis="estimated")
        now = time.perf_counter()
        self.cost, self.balance = admission.settle(
            self.key,
            {
                "request_id": self.request_id,
                "organization_id": self.key.organization_id,
                "key_id": self.key.key_id,
                "model_id": self.route.model_id,
                "model": self.route.public_id,
                "stream": self.chat.stream,
                "status": status,
                "http_status": http_status,
                "error_code": error_code,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cached_tokens": usage.cached_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
                "basis": usage.basis,
                "started_at": self.started_at.isoformat(),
                "latency_ms": round((now - self._t0) * 1000),
                "ttft_ms": round((self._first_byte - self._t0) * 1000) if self._first_byte else None,
            },
            prices_of(self.route),
            usage.prompt_tokens + usage.completion_tokens,
        )
        observability.request_finished(
            request_id=self.request_id, key=self.key, model=self.chat.model, served_by=self.route.public_id,
            stream=self.chat.stream, status=status, http_status=http_status, code=error_code,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost=self.cost,
            latency=now - self._t0, ttft=self._first_byte - self._t0 if self._first_byte else None,
            content=self._content(),
        )

    def _content(self) -> dict | None:
        if self.completion_text is None:
            return None
        return {"prompt": self.chat.body.get("messages", self.chat.body.get("input")),
                "completion": "".join(self.completion_text)}
