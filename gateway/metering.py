"""What one request is measured by, in three parts that change for different reasons:

- `Charge`: its money. Admitted once (rate limits, spend limit, balance, its worst-case
  cost held) before any upstream call, settled once at its real cost.
- `Timing`: when it started, when its first byte left, how long it took.
- `CapturedText`: the answer's text as relayed, counted into tokens when the upstream does
  not say, and kept for organizations whose operator logs content.

`Exchange` holds the three with how the request ended (`Outcome`); the pipeline settles it.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from billing import abandoned, charging, live
from billing.money import usd

from . import observability
from .upstream.adapters import Usage
from .routing.catalog import Route
from .api.errors import InsufficientQuota
from .routing.limits import headers_for, rate_limit_error
from .parsing.tokens import estimate_text_tokens

log = logging.getLogger(__name__)


def prices_of(route: Route) -> charging.Prices:
    return route.prices


def cost_of(usage: Usage, route: Route) -> Decimal:
    """What settling will charge, for the header and the stream's usage chunk: billing's
    one cost rule on the route's prices."""
    return charging.cost_of(prices_of(route), usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                            usage.cache_write_tokens)


class Timing:
    def __init__(self):
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()
        self._first_byte: float | None = None

    def first_byte(self) -> None:
        if self._first_byte is None:
            self._first_byte = time.perf_counter()

    def latency(self) -> float:
        return time.perf_counter() - self._t0

    def ttft(self) -> float | None:
        return self._first_byte - self._t0 if self._first_byte is not None else None


class CapturedText:
    def __init__(self, log_content: bool):
        self.relayed_tokens = 0  # counted from what the caller received
        self.kept: list[str] | None = [] if log_content else None

    def count_relayed(self, text: str) -> None:
        if text:
            self.relayed_tokens += estimate_text_tokens(text)
            self.keep(text)

    def keep(self, text: str) -> None:
        if self.kept is not None and text:
            self.kept.append(text)


@dataclass
class Outcome:
    status: str  # completed, upstream_error, client_gone, error
    usage: Usage | None
    http_status: int = 200
    error_code: str | None = None


def intent_of(request_id: str, key, request, route: Route, timing: Timing) -> str:
    """What the sweep books if the request is never settled: its prompt estimate on the
    first route it will be sent to (billing.abandoned)."""
    return abandoned.intent(request_id, key.organization_id, key.key_id, route.model_id, route.public_id,
                            request.stream, request.prompt_estimate(), prices_of(route), timing.started_at)


PER_PERIOD = {"none": "", "daily": " per UTC day", "weekly": " per UTC week", "monthly": " per UTC month"}


class Charge:
    """The request's money: `admit` holds its worst-case cost or refuses it; `settle`
    turns the hold into the real cost, exactly once."""

    def __init__(self, request_id: str, key, admitted: live.Admitted, headers: dict):
        self.request_id = request_id
        self.key = key
        self.booked_balance = admitted.booked_balance  # the balance before this request's cost
        self.limit_headers = headers  # the key's rate-limit state, for the answer's headers
        self.cost: Decimal | None = None
        self.balance: Decimal | None = None
        self._settled = False

    @classmethod
    def admit(cls, request_id: str, key, amount: Decimal, intent: str = "", now: datetime | None = None) -> "Charge":
        """Count the request against the key's rate limits and hold `amount`, or refuse it
        (a GatewayError) before any upstream call, leaving nothing held. `intent` is what
        to book should this process die before settling (intent_of); `now`, when the
        request arrived, picks the key's budget period, as it dates its usage record."""
        try:
            admitted = live.admit(key, request_id, amount, intent, now)
        except live.RateLimited as e:
            raise rate_limit_error(key, e.window)
        except charging.KeySpendLimitReached:
            per = PER_PERIOD.get(key.budget_period, "")
            raise InsufficientQuota(
                f"This API key's spend limit of {usd(key.spend_limit)} USD{per} would be "
                "passed by this request. Raise the key's limit in the console, or use another key."
            )
        except charging.InsufficientBalance as e:
            raise InsufficientQuota(
                f"Your prepaid balance cannot cover this request: it may cost up to {usd(e.needed)} USD and "
                f"{usd(max(e.available, 0))} USD is available. Add credit, or lower max_tokens."
            )
        window = admitted.window
        headers = headers_for(key.rpm_limit, key.tpm_limit, window) if window else {}
        return cls(request_id, key, admitted, headers)

    def settle(self, route: Route, event_fields: dict, usage: Usage) -> None:
        if self._settled:
            raise RuntimeError(f"request {self.request_id} was settled twice")
        self._settled = True
        self.cost, self.balance = live.settle(self.key, event_fields, prices_of(route),
                                                   usage.prompt_tokens + usage.completion_tokens)


@dataclass
class Exchange:
    """One admitted request on its way through the pipeline."""

    request_id: str
    key: object  # KeyIdentity
    request: object  # the surface's parsed request (ChatRequest, EmbeddingRequest)
    route: Route  # the model that answered, once one has; its price is the one charged
    charge: Charge
    timing: Timing
    text: CapturedText
    outcome: Outcome | None = None
    served: bool = False  # whether an upstream answered at all

    @property
    def caller_model(self) -> str:
        return self.request.model

    def served_by(self, route: Route) -> None:
        self.route, self.served = route, True

    def estimated_usage(self, basis: str) -> Usage:
        return Usage(self.request.prompt_estimate(), self.text.relayed_tokens, basis=basis)

    def cut_short_usage(self, usage: Usage | None) -> Usage:
        """What a stream cut short is charged, on every surface: the prompt as the upstream
        counted it so far (else the estimate), and at least the output the caller received."""
        if usage is None:
            return self.estimated_usage("partial")
        return Usage(usage.prompt_tokens, max(usage.completion_tokens, self.text.relayed_tokens),
                     cached_tokens=usage.cached_tokens, cache_write_tokens=usage.cache_write_tokens,
                     reasoning_tokens=usage.reasoning_tokens, basis="partial")

    def settle(self) -> None:
        """Charge the outcome, queue its usage event, count and log it. Called once, after
        the caller has the answer (gateway.relay.SettlesOnClose); never raises, because
        the answer is already gone."""
        outcome = self.outcome or Outcome("client_gone", self.estimated_usage("partial"))
        usage = outcome.usage or Usage(0, 0, basis="estimated")
        try:
            self._check_overrun(usage)
            latency, ttft = self.timing.latency(), self.timing.ttft()
            self.charge.settle(self.route, self._event_fields(outcome, usage, latency, ttft), usage)
        except Exception:
            log.exception("could not settle request %s", self.request_id)
            return
        observability.request_finished(
            request_id=self.request_id, key=self.key, model=self.caller_model, served_by=self.route.public_id,
            stream=self.request.stream, status=outcome.status, http_status=outcome.http_status,
            code=outcome.error_code, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            cost=self.charge.cost, latency=latency, ttft=ttft, content=self._content(),
        )

    def _check_overrun(self, usage: Usage) -> None:
        # The cap was sent upstream and reserved for; an upstream that answers longer is
        # charged what it reports (the organization's credit limit is the only slack), and
        # the operator must hear of it.
        bound = self.request.output_bound(self.route.max_output_tokens)
        if self.served and usage.completion_tokens > bound:
            excess = usage.completion_tokens - bound
            observability.output_overrun(self.route.public_id, excess)
            log.warning("request %s: upstream %s reported %s completion tokens, %s over the %s reserved for",
                        self.request_id, self.route.public_id, usage.completion_tokens, excess, bound)

    def _event_fields(self, outcome: Outcome, usage: Usage, latency: float, ttft: float | None) -> dict:
        return {
            "request_id": self.request_id,
            "organization_id": self.key.organization_id,
            "key_id": self.key.key_id,
            "model_id": self.route.model_id,
            "model": self.route.public_id,
            "stream": self.request.stream,
            "status": outcome.status,
            "http_status": outcome.http_status,
            "error_code": outcome.error_code,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "basis": usage.basis,
            "started_at": self.timing.started_at.isoformat(),
            "latency_ms": round(latency * 1000),
            "ttft_ms": round(ttft * 1000) if ttft is not None else None,
        }

    def _content(self) -> dict | None:
        if self.text.kept is None:
            return None
        body = self.request.body
        return {"prompt": body.get("messages", body.get("input")), "completion": "".join(self.text.kept)}
