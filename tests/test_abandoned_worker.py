"""Production shape: a gunicorn worker of the Procfile's web process is SIGKILLed while it
relays a stream, so the request never settles. The sweep books it, once, as an "abandoned"
usage record and one ledger charge of its prompt estimate, and its hold is gone."""

import os
import signal
import time
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.db import connection

from billing import charging, live
from billing.models import Account, LedgerEntry, UsageRecord
from billing.reconcile import ledger_is_consistent, reconcile
from billing.tasks import book_abandoned_requests
from gateway.keys.api_keys import mint_api_key
from gateway.parsing.tokens import estimate_prompt_tokens
from gateway.routing.catalog_loader import load_catalog
from tests.conftest import catalog_yaml
from tests.procfile_server import procfile_web, web_worker_pids

PROMPT = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper and a storm."}]
PRICES = charging.Prices(Decimal("0.27"), Decimal("1.10"), None)  # every mock model's, tests/conftest.py


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                    reason="production shape: PostgreSQL and Redis (CI sets DATABASE_URL and REDIS_URL)")
def test_a_web_worker_killed_mid_stream_is_booked_once_as_abandoned(catalog, org, settings):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))  # slow-stream waits 3 s after its first chunk
    _, secret = mint_api_key(org)
    with procfile_web(workers=1) as base:
        [worker] = web_worker_pids(base)
        with requests.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                           json={"model": "mock:slow-stream", "messages": PROMPT, "stream": True},
                           stream=True, timeout=30) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            next(response.iter_lines())  # the role chunk: the upstream is answering, the worker relaying
            os.kill(worker, signal.SIGKILL)
            rest = b""
            try:
                for data in response.iter_content(chunk_size=None):
                    rest += data
            except requests.RequestException:
                pass  # the connection died with its worker
            assert b"[DONE]" not in rest
        wait_for(lambda: web_worker_pids(base) not in ([], [worker]), timeout=10)  # the master made another
        # and it serves (a worker told to stop while it boots would hold up the shutdown)
        assert requests.get(f"{base}/healthz", timeout=30).status_code == 200

    assert not UsageRecord.objects.filter(request_id=request_id).exists()  # nobody settled it
    assert live.outstanding_holds() == 1
    settings.GATEWAY_ABANDONED_AFTER_SECONDS = 0.5
    time.sleep(0.6)
    assert book_abandoned_requests() == 1
    assert book_abandoned_requests() == 0
    reconcile()

    cost = charging.cost_of(PRICES, estimate_prompt_tokens(PROMPT), 0)
    assert cost > 0
    record = UsageRecord.objects.get(organization=org)
    assert (record.request_id, record.status, record.cost, record.completion_tokens) == (
        request_id, "abandoned", cost, 0)
    [entry] = LedgerEntry.objects.filter(account__organization=org, kind="usage")
    assert (entry.reference, entry.amount) == (f"usage:{request_id}", -cost)
    assert Account.objects.get(organization=org).balance == Decimal("100") - cost
    assert ledger_is_consistent(org.pk)
    snapshot = live.snapshot(org.pk)
    assert (snapshot.held, snapshot.pending) == (0, 0) and live.outstanding_holds() == 0
