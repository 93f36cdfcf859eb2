"""Probes, Prometheus metrics and the per-request JSON log line."""

import json
import logging
from decimal import Decimal

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from gateway import observability
from tests.live_threads import wait_until_idle

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-0123456789"
SECRET_PROMPT = "my-private-prompt-do-not-log-4242"
HELLO = [{"role": "user", "content": "Say hello"}]


def scrape(token: str = TOKEN) -> dict:
    """The metrics page as {(name, sorted labels): value}."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""


# -- probes


def test_healthz_answers_without_touching_anything(monkeypatch):
    monkeypatch.setattr(observability, "check_database", lambda: pytest.fail("healthz touched the database"))
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency_ok(settings):
    response = Client().get("/readyz")
    assert response.status_code == 200
    expected = {"database": "ok"}
    if settings.REDIS_URL:
        expected.update(redis="ok", broker="ok")
    assert response.json() == {"status": "ready", "checks": expected}


def test_readyz_names_the_database_when_it_fails(monkeypatch):
    def broken():
        raise ConnectionError("could not connect to postgres://admin:hunter2@db.internal/mixgateway")

    monkeypatch.setattr(observability, "check_database", broken)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "error: ConnectionError"
    assert "hunter2" not in response.content.decode()


def test_readyz_checks_redis_when_configured(settings, monkeypatch):
    real_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1
    settings.READYZ_TIMEOUT_SECONDS = 0.5
    monkeypatch.setattr(observability, "check_broker", lambda: None)
    response = Client().get("/readyz")
    settings.REDIS_URL = real_url  # before conftest's cleanup, which uses it
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] == "ok"
    assert checks["redis"].startswith("error: ")
    assert "hunter2" not in response.content.decode()


def test_probes_need_no_csrf_token_or_login():
    client = Client(enforce_csrf_checks=True)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


# -- metrics


def test_metrics_are_off_without_a_token(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_metrics_refuse_a_wrong_token(metrics_on, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"mixgateway" not in response.content


def test_metrics_count_a_request(metrics_on, client):
    before = scrape()
    answer = client.chat.completions.create(model="mock:ok", messages=HELLO)
    after = scrape()
    assert value(after, "mixgateway_requests_total", model="mock:ok", status="completed", code="") == \
        value(before, "mixgateway_requests_total", model="mock:ok", status="completed", code="") + 1
    for kind, tokens in (("prompt", answer.usage.prompt_tokens), ("completion", answer.usage.completion_tokens)):
        assert value(after, "mixgateway_tokens_total", model="mock:ok", kind=kind) == \
            value(before, "mixgateway_tokens_total", model="mock:ok", kind=kind) + tokens
    assert value(after, "mixgateway_cost_usd_total", model="mock:ok") == pytest.approx(
        value(before, "mixgateway_cost_usd_total", model="mock:ok") + 0.00000546)  # 8 * 0.27 + 3 * 1.10
    for histogram in ("mixgateway_request_seconds_count", "mixgateway_upstream_first_byte_seconds_count"):
        assert value(after, histogram, model="mock:ok") == value(before, histogram, model="mock:ok") + 1


def test_metrics_time_a_stream_and_count_upstream_errors(metrics_on, client):
    before = scrape()
    list(client.chat.completions.create(model="mock:ok", messages=HELLO, stream=True))
    with pytest.raises(Exception):
        client.chat.completions.create(model="mock:fail-400", messages=HELLO)
    wait_until_idle()
    after = scrape()
    name = "mixgateway_upstream_first_byte_seconds_count"
    assert value(after, name, model="mock:ok") == value(before, name, model="mock:ok") + 1
    failed = [k for k in after if k[0] == "mixgateway_requests_total" and ("model", "mock:fail-400") in k[1]]
    assert failed, "the upstream's refusal is counted"
    assert all(dict(k[1])["status"] == "upstream_error" for k in failed)
    assert sum(after[k] for k in failed) == sum(before.get(k, 0) for k in failed) + 1


def test_metrics_count_upstream_failures_and_cooldowns(metrics_on, client, catalog, settings):
    settings.GATEWAY_RETRY_BACKOFF_SECONDS = 0.01
    settings.GATEWAY_COOLDOWN_AFTER_FAILURES = 2
    deployment = f"mock:fail-500@{catalog.base_url}"
    before = scrape()
    with pytest.raises(Exception):
        client.chat.completions.create(model="mock:fail-500", messages=HELLO)
    after = scrape()
    assert value(after, "mixgateway_upstream_failures_total", deployment=deployment) == \
        value(before, "mixgateway_upstream_failures_total", deployment=deployment) + 2  # tried, retried
    assert value(after, "mixgateway_cooldowns_total", deployment=deployment) == \
        value(before, "mixgateway_cooldowns_total", deployment=deployment) + 1
    assert value(after, "mixgateway_requests_total", model="mock:fail-500", status="upstream_error",
                 code="upstream_error") >= 1


def test_metrics_show_the_billing_gauges(metrics_on, client):
    client.chat.completions.create(model="demo:echo", messages=HELLO)
    samples = scrape()
    assert ("mixgateway_reservations_outstanding", ()) in samples
    assert ("mixgateway_reconciliation_lag_seconds", ()) in samples
    assert samples[("mixgateway_reservations_outstanding", ())] >= 0
    assert samples[("mixgateway_reconciliation_lag_seconds", ())] >= 0


def test_gauges_read_the_store(metrics_on, org):
    from billing import live
    from gateway.keys.api_keys import identity_of, mint_api_key

    live.admit(identity_of(mint_api_key(org)[0]), "req-held-1", Decimal("0.01"))
    assert observability.outstanding_reservations() >= 1
    assert observability.reconciliation_lag_seconds() >= 0


def test_a_broken_store_leaves_the_counters_scrapable(metrics_on, monkeypatch):
    def broken():
        raise ConnectionError("redis down")

    monkeypatch.setattr(observability, "outstanding_reservations", broken)
    samples = scrape()
    assert ("mixgateway_reservations_outstanding", ()) not in samples


# -- logs


def request_lines(caplog) -> list[dict]:
    formatter = observability.JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "mixgateway.requests"]


def test_one_json_log_line_per_request_without_text(client, caplog, api_key):
    caplog.set_level(logging.INFO, logger="mixgateway.requests")
    messages = [{"role": "user", "content": SECRET_PROMPT}]
    raw = client.chat.completions.with_raw_response.create(model="demo:echo", messages=messages)
    raw.parse()
    request_id = raw.headers["x-request-id"]
    list(client.chat.completions.create(model="demo:echo", messages=messages, stream=True))
    wait_until_idle()

    lines = request_lines(caplog)
    mine = [line for line in lines if line["request_id"] == request_id]
    assert len(mine) == 1
    line = mine[0]
    assert set(line) >= {"event", "request_id", "organization_id", "key_prefix", "model", "served_by", "status",
                         "http_status", "code", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms",
                         "ttft_ms", "stream"}
    assert line["event"] == "request" and line["status"] == "completed" and line["http_status"] == 200
    assert line["model"] == "demo:echo" and line["served_by"] == "demo:echo" and line["stream"] is False
    assert isinstance(line["cost_usd"], str) and line["cost_usd"] == raw.headers["x-mixgateway-cost-usd"]
    assert line["key_prefix"] and api_key.startswith(line["key_prefix"]) and line["key_prefix"] != api_key
    assert isinstance(line["latency_ms"], int) and isinstance(line["ttft_ms"], int)
    assert len(lines) == 2 and lines[1]["stream"] is True
    for record in caplog.records:
        assert SECRET_PROMPT not in record.getMessage()
        assert SECRET_PROMPT not in observability.JsonFormatter().format(record)
        assert api_key not in observability.JsonFormatter().format(record)


def test_an_upstream_error_is_logged_with_its_code(client, caplog):
    caplog.set_level(logging.INFO, logger="mixgateway.requests")
    with pytest.raises(Exception):
        client.chat.completions.create(model="mock:fail-500", messages=HELLO)
    (line,) = request_lines(caplog)
    assert line["status"] == "upstream_error" and line["http_status"] == 502 and line["code"] == "upstream_error"
    assert line["ttft_ms"] is None and line["cost_usd"] == "0"


def test_the_plain_format_is_key_value_pairs(client, caplog):
    caplog.set_level(logging.INFO, logger="mixgateway.requests")
    client.chat.completions.create(model="demo:echo", messages=[{"role": "user", "content": SECRET_PROMPT}])
    (record,) = [r for r in caplog.records if r.name == "mixgateway.requests"]
    text = record.getMessage()
    assert text.startswith("request request_id=") and "status=completed" in text
    assert SECRET_PROMPT not in text
