"""Durable settlement: a request whose settlement Redis cannot take is kept in the outbox and
booked from there exactly once, its holds given back when Redis answers again. Redis here
is a redis-server of the test's own (AOF on), stopped and started for real."""

import dataclasses
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from billing import charging, live, outbox, redis_pool
from billing.models import Account, LedgerEntry, SettlementOutbox, UsageRecord
from billing.money import to_units
from billing.reconcile import ledger_is_consistent, reconcile
from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import identity_of, mint_api_key
from gateway.models import ApiKey
from tests.conftest import catalog_yaml
from tests.procfile_server import procfile_web
from tests.redis_server import own_redis_server

PRICES = charging.Prices(Decimal("0.27"), Decimal("1.10"), None)
HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def own_redis(settings):
    """This process's live store on a redis-server the test may stop and start."""
    with own_redis_server() as server:
        original_url, original_client = settings.REDIS_URL, redis_pool._client
        settings.REDIS_URL, redis_pool._client = server.url, None
        live.reset()
        try:
            yield server
        finally:
            if redis_pool._client is not None:
                redis_pool._client.connection_pool.disconnect()
            settings.REDIS_URL, redis_pool._client = original_url, original_client
            live.reset()


def limited_key(org):
    row, _ = mint_api_key(org)
    return dataclasses.replace(identity_of(row), tpm_limit=100_000, spend_limit=Decimal("10"))


def event_fields(key, rid: str) -> dict:
    return {
        "request_id": rid, "organization_id": key.organization_id, "key_id": key.key_id, "model_id": None,
        "model": "mock:ok", "stream": False, "status": "completed", "http_status": 200, "error_code": None,
        "prompt_tokens": 1000, "completion_tokens": 1000, "cached_tokens": 0, "reasoning_tokens": 0,
        "basis": "provider", "started_at": datetime.now(UTC).isoformat(), "latency_ms": 5, "ttft_ms": None,
    }


def key_spend(key) -> tuple[int, int]:
    spent, held = live.client().hmget(live.layout().key_spend(key.organization_id, key.key_id), "spent", "held")
    return int(spent), int(held)


def assert_booked_once(org, rid: str, cost: Decimal) -> None:
    assert UsageRecord.objects.get(request_id=rid).cost == cost
    assert LedgerEntry.objects.filter(reference=f"usage:{rid}").count() == 1
    assert Account.objects.get(organization=org).balance == Decimal("100") - cost
    assert ledger_is_consistent(org.pk)


@pytest.mark.django_db
def test_a_settlement_redis_cannot_take_is_kept_then_booked_once(org, own_redis, caplog):
    key, rid = limited_key(org), f"req-{uuid.uuid4()}"
    live.admit(key, rid, Decimal("0.5"))
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="mixgateway.billing"):
        cost, balance = live.settle(key, event_fields(key, rid), PRICES, 2000)
    assert cost == Decimal("0.00137") and balance is None
    assert SettlementOutbox.objects.get().request_id == rid
    assert any(rid in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    # Booking while Redis is still down books the usage; the hold waits for Redis.
    with pytest.raises(redis.ConnectionError):
        reconcile()
    assert_booked_once(org, rid, cost)
    assert SettlementOutbox.objects.count() == 1

    own_redis.start()  # the AOF brings the hold back
    assert live.snapshot(org.pk).held == to_units(Decimal("0.5"))
    reconcile()
    reconcile()  # and again: nothing more is booked or released
    assert not SettlementOutbox.objects.exists()
    assert_booked_once(org, rid, cost)
    snapshot = live.snapshot(org.pk)
    assert (snapshot.held, snapshot.pending) == (0, 0) and live.outstanding_holds() == 0
    assert key_spend(key) == (to_units(cost), 0)


@pytest.mark.django_db
def test_a_settlement_both_in_redis_and_in_the_outbox_counts_once(org, own_redis):
    """A reply lost after Redis ran the settle script: the event is in the stream and in
    the outbox. It is booked once, and the key's spend counts it once."""
    key, rid = limited_key(org), f"req-{uuid.uuid4()}"
    live.admit(key, rid, Decimal("0.5"))
    cost, _ = live.settle(key, event_fields(key, rid), PRICES, 2000)
    outbox.keep(charging.usage_event(event_fields(key, rid), PRICES)[1], redis.ConnectionError("reply lost"))
    reconcile()
    assert not SettlementOutbox.objects.exists() and live.backlog() == 0
    assert_booked_once(org, rid, cost)
    assert key_spend(key) == (to_units(cost), 0)
    assert live.snapshot(org.pk).pending == 0 and live.outstanding_holds() == 0


@pytest.mark.django_db
def test_admission_without_redis_raises_and_writes_nothing(org, own_redis):
    key = limited_key(org)
    live.admit(key, f"req-{uuid.uuid4()}", Decimal("0.5"))  # the pool has a connection open
    own_redis.stop()
    with pytest.raises(live.LiveStoreUnavailable) as refused:
        live.admit(key, f"req-{uuid.uuid4()}", Decimal("0.5"))
    assert isinstance(refused.value, redis.ConnectionError)
    assert not SettlementOutbox.objects.exists()
    own_redis.start()
    # The pooled connection died with the old server; the next admission needs none of it.
    live.admit(key, f"req-{uuid.uuid4()}", Decimal("0.5"))
    assert live.snapshot(org.pk).held == to_units(Decimal("1"))


# -- production shape: the Procfile's web processes, a Redis outage while requests settle ----


class Load:
    """Callers on their own threads; each served request's id, and every status seen."""

    def __init__(self, base: str, secret: str):
        self.url = f"{base}/v1/chat/completions"
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.lock = threading.Lock()
        self.served: list[str] = []
        self.statuses: list[int] = []
        self.threads: list[threading.Thread] = []

    def _record(self, response) -> None:
        with self.lock:
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                self.served.append(response.headers["x-request-id"])

    def call(self, model: str, stream: bool = False) -> None:
        body = {"model": model, "messages": HELLO, "stream": stream, "max_tokens": 8}
        with requests.post(self.url, headers=self.headers, json=body, stream=stream, timeout=30) as response:
            for _ in response.iter_content(chunk_size=None):
                pass
            self._record(response)

    def start(self, model: str, stream: bool = False) -> None:
        thread = threading.Thread(target=self.call, args=(model, stream))
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                    reason="production shape: PostgreSQL and Redis (CI sets DATABASE_URL and REDIS_URL)")
def test_a_redis_outage_while_requests_settle_loses_no_settlement(catalog, org, own_redis, capsys):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))  # mock:slow and slow-stream wait 3 s
    row, secret = mint_api_key(org)
    ApiKey.objects.filter(pk=row.pk).update(rpm_limit=1000, tpm_limit=1_000_000, spend_limit=Decimal("50"))
    with procfile_web(workers=2, REDIS_URL=own_redis.url) as base:
        load = Load(base, secret)
        for _ in range(3):
            load.call("mock:ok")  # warm: the key, its spend and the account are loaded
        for _ in range(6):
            load.start("mock:slow")
            load.start("mock:slow-stream", stream=True)
        # Admitted once the upstream has them; each settles 3 s after that (the mock's wait).
        slow = lambda: sum(r["body"]["model"].startswith("slow") for r in catalog.requests)  # noqa: E731
        wait_for(lambda: slow() >= 1, timeout=10)
        first_admitted = time.monotonic()
        wait_for(lambda: slow() == 12, timeout=2)
        time.sleep(max(first_admitted + 2.0 - time.monotonic(), 0))
        own_redis.stop()
        down_at = time.monotonic()
        refused = [requests.post(load.url, headers=load.headers, json={"model": "mock:ok", "messages": HELLO},
                                 timeout=10).status_code for _ in range(3)]
        load.join()
        wait_for(lambda: SettlementOutbox.objects.count() == 12, timeout=10)
        own_redis.start()
        outage = time.monotonic() - down_at
        for _ in range(5):
            load.call("mock:ok")  # served again at once after the restart
    assert load.statuses.count(200) == 3 + 12 + 5, load.statuses
    assert all(status >= 500 for status in refused), refused
    with capsys.disabled():
        print(f"\nRedis down {outage:.2f} s: {len(refused)} refused at admission, 12 settlements outboxed")

    reconcile()
    served = sorted(load.served)
    records = UsageRecord.objects.filter(organization=org)
    assert sorted(records.values_list("request_id", flat=True)) == served
    usage = LedgerEntry.objects.filter(account__organization=org, kind="usage")
    assert sorted(usage.values_list("reference", flat=True)) == sorted(f"usage:{rid}" for rid in served)
    total = sum(r.cost for r in records)
    assert Account.objects.get(organization=org).balance == Decimal("100") - total
    assert ledger_is_consistent(org.pk)
    assert not SettlementOutbox.objects.exists() and live.backlog() == 0
    snapshot = live.snapshot(org.pk)
    assert (snapshot.held, snapshot.pending) == (0, 0) and live.outstanding_holds() == 0
    assert key_spend(identity_of(row)) == (to_units(total), 0)
