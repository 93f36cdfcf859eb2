"""Seeing the gateway from outside: liveness and readiness probes, Prometheus metrics and
one structured log line per request.

The request path pays for one call, `request_finished`, made by gateway.metering.Exchange.settle: a few
counter and histogram updates in process memory (or an mmap'd file in multiprocess
mode) and one log record. Everything that needs Redis or the database is computed when
Prometheus scrapes, never per request.
"""

import hmac
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from django.conf import settings
from django.db import connections
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from billing.money import usd

log = logging.getLogger(__name__)
request_log = logging.getLogger("mixgateway.requests")

# -- Metrics ---------------------------------------------------------------------------
# Labels hold only catalog model ids, statuses, error codes and deployment ids: values the
# operator's catalog bounds. Organizations, keys and request ids belong in the log line.

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("mixgateway_requests", "Gateway requests that reached an upstream decision, by how they ended.",
                   ["model", "status", "code"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("mixgateway_request_seconds", "Whole request latency, until the last byte.",
                            ["model"], registry=REGISTRY,
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300))
FIRST_BYTE_SECONDS = Histogram("mixgateway_upstream_first_byte_seconds",
                               "Time until the upstream's first byte (first token of a stream).",
                               ["model"], registry=REGISTRY,
                               buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60))
TOKENS = Counter("mixgateway_tokens", "Tokens billed, by kind.", ["model", "kind"], registry=REGISTRY)
# A float is fine for a dashboard; the ledger is the exact record of money.
COST_USD = Counter("mixgateway_cost_usd", "Cost charged in USD (approximate; the ledger is exact).",
                   ["model"], registry=REGISTRY)
UPSTREAM_FAILURES = Counter("mixgateway_upstream_failures", "Retryable upstream failures, per attempt.",
                            ["deployment"], registry=REGISTRY)
OUTPUT_OVERRUN_TOKENS = Counter(
    "mixgateway_output_overrun_tokens",
    "Completion tokens an upstream reported beyond the output cap it was sent and the gateway reserved for.",
    ["model"], registry=REGISTRY)
COOLDOWNS = Counter("mixgateway_cooldowns", "Times a deployment was taken out of rotation.",
                    ["deployment"], registry=REGISTRY)


def request_refused(code: str) -> None:
    """A request refused before it was metered (bad key, bad body, limits, balance)."""
    try:
        REQUESTS.labels("", "rejected", code or "").inc()
    except Exception:
        log.exception("could not count a refused request")


def upstream_failed(deployment: str) -> None:
    UPSTREAM_FAILURES.labels(deployment).inc()


def output_overrun(served_by: str, tokens: int) -> None:
    OUTPUT_OVERRUN_TOKENS.labels(served_by).inc(tokens)


def cooled_down(deployment: str) -> None:
    COOLDOWNS.labels(deployment).inc()


_per_model: dict[str, tuple] = {}


def _model_metrics(served_by: str) -> tuple:
    """A model's labelled metrics, looked up once per process: `labels()` builds and
    locks on every call, and the catalog bounds how many models there are."""
    children = _per_model.get(served_by)
    if children is None:
        children = _per_model[served_by] = (
            REQUEST_SECONDS.labels(served_by), FIRST_BYTE_SECONDS.labels(served_by),
            TOKENS.labels(served_by, "prompt"), TOKENS.labels(served_by, "completion"), COST_USD.labels(served_by),
        )
    return children


def request_finished(*, request_id: str, key, model: str, served_by: str, stream: bool, status: str,
                     http_status: int, code: str | None, prompt_tokens: int, completion_tokens: int,
                     cost: Decimal | None, latency: float, ttft: float | None,
                     content: dict | None = None) -> None:
    """Count one finished request and write its log line. Never raises: observing a
    request must not fail it after it has been charged."""
    try:
        REQUESTS.labels(served_by, status, code or "").inc()
        seconds, first_byte, prompt, completion, cost_usd = _model_metrics(served_by)
        seconds.observe(latency)
        if ttft is not None:
            first_byte.observe(ttft)
        if prompt_tokens:
            prompt.inc(prompt_tokens)
        if completion_tokens:
            completion.inc(completion_tokens)
        if cost:
            cost_usd.inc(float(cost))
        if request_log.isEnabledFor(logging.INFO):
            # Counts and ids only, unless an operator turned content logging on for the
            # organization (Organization.log_content): then the text too.
            request_log.info("request %s", _KeyValues({
                **(content or {}),
                "event": "request",
                "request_id": request_id,
                "organization_id": key.organization_id,
                "key_prefix": key.prefix,
                "model": model,
                "served_by": served_by,
                "status": status,
                "http_status": http_status,
                "code": code or "",
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "cost_usd": usd(cost) if cost is not None else None,
                "latency_ms": round(latency * 1000),
                "ttft_ms": round(ttft * 1000) if ttft is not None else None,
                "stream": stream,
            }))
    except Exception:
        log.exception("could not record metrics for request %s", request_id)


class GatewayStateCollector:
    """Gauges read from the billing store when Prometheus scrapes."""

    GAUGES = {
        "mixgateway_reservations_outstanding": "Reservations held for requests that have not settled yet.",
        "mixgateway_reconciliation_lag_seconds": "Age of the oldest usage event not yet booked into the ledger.",
    }

    def describe(self):
        return [GaugeMetricFamily(name, doc) for name, doc in self.GAUGES.items()]

    def collect(self):
        try:
            values = [outstanding_reservations(), reconciliation_lag_seconds()]
        except Exception as e:
            # A scrape still answers with the counters; the missing gauges show the outage.
            log.warning("metrics: billing store unreadable: %s", type(e).__name__)
            return
        for (name, doc), value in zip(self.GAUGES.items(), values):
            yield GaugeMetricFamily(name, doc, value=value)


STATE = GatewayStateCollector()
REGISTRY.register(STATE)


# billing.live is imported when scraped: this module is loaded with the logging settings,
# before Django's apps (and billing's models) are ready.

def outstanding_reservations() -> int:
    from billing import live

    return live.outstanding_holds()


def reconciliation_lag_seconds() -> float:
    from billing import live

    return live.oldest_event_age_seconds()


def _scrape_registry() -> CollectorRegistry:
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return REGISTRY
    # gunicorn's workers each write their own files; any one of them sums all of them.
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    registry.register(STATE)
    return registry


@csrf_exempt
@require_GET
def metrics_view(request):
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404  # off unless the operator sets a token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = JsonResponse({"error": "A valid metrics token is required."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_scrape_registry()), content_type=CONTENT_TYPE_LATEST)


# -- Probes ----------------------------------------------------------------------------


@csrf_exempt
@require_GET
def healthz(request):
    """Liveness: the process answers. Touches nothing, so a database outage does not get
    every web process restarted."""
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    import redis

    timeout = settings.READYZ_TIMEOUT_SECONDS
    if not settings.REDIS_CLUSTER:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return
    # A cluster is ready when a node it names answers and says every slot is served.
    from billing.redis_pool import cluster_nodes

    nodes, options = cluster_nodes(settings.REDIS_URL)
    error = None
    for host, port in nodes:
        client = redis.Redis(host=host, port=port, socket_connect_timeout=timeout, socket_timeout=timeout, **options)
        try:
            state = client.cluster("INFO").get("cluster_state")
            if state == "ok":
                return
            error = redis.ConnectionError(f"cluster_state is {state}")
        except redis.RedisError as e:
            error = e
        finally:
            client.close()
    raise error


def check_broker() -> None:
    # The project's Celery app (console/celery.py), found without importing the plumbing:
    # Celery's Django fixup makes it the default app in every thread.
    from celery import current_app as app

    timeout = settings.READYZ_TIMEOUT_SECONDS
    connection = app.connection_for_write(connect_timeout=timeout,
                                          transport_options={"socket_timeout": timeout})
    try:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    finally:
        connection.release()


@csrf_exempt
@require_GET
def readyz(request):
    """Readiness: the database answers, and with REDIS_URL set, Redis and the Celery
    broker too. A failure is named by its exception class only: the probe has no
    authentication, so hosts and messages go to the log instead."""
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks.update(redis=check_redis, broker=check_broker)
    results, ready = {}, True
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as e:
            log.warning("readiness check %s failed: %s", name, e)
            results[name] = f"error: {type(e).__name__}"
            ready = False
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": results},
                        status=200 if ready else 503)


# -- Logs ------------------------------------------------------------------------------


class _KeyValues:
    """A request's log fields: JsonFormatter writes them as JSON, a plain formatter as
    key=value pairs (only formatted if some handler actually writes the record)."""

    def __init__(self, fields: dict):
        self.fields = fields

    def __str__(self):
        return " ".join(f"{name}={value}" for name, value in self.fields.items() if name != "event")


class JsonFormatter(logging.Formatter):
    """One JSON object per line. A request record's fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if isinstance(fields, _KeyValues):
            line.update(fields.fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(line, default=str).decode()
        except TypeError:  # a lone surrogate in logged content, an integer past 64 bits
            return json.dumps(line, default=str)
