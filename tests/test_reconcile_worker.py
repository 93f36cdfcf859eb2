"""Reconciliation survives a worker dying anywhere: each request is booked exactly once."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from django.conf import settings
from django.db import connection

from billing import live, live_stream
from billing.models import Account, LedgerEntry, UsageRecord
from billing.reconcile import book, ledger_is_consistent, reconcile
from tests.billing_helpers import OK_COST

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
HELLO = [{"role": "user", "content": "Say hello"}]


def burst(client, count: int) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: client.chat.completions.create(model="mock:ok", messages=HELLO), range(count)))


def assert_each_booked_once(org, count: int) -> None:
    records = UsageRecord.objects.filter(organization=org)
    assert records.count() == count
    usage = LedgerEntry.objects.filter(account__organization=org, kind="usage")
    assert usage.count() == count
    assert sorted(e.reference for e in usage) == sorted(f"usage:{r.request_id}" for r in records)
    assert Account.objects.get(organization=org).balance == Decimal("100") - count * OK_COST
    assert ledger_is_consistent(org.pk)


def test_a_batch_booked_but_never_acknowledged_is_not_booked_again(client, org, settings):
    settings.BILLING_RECLAIM_IDLE_SECONDS = 0
    burst(client, 6)
    batch = live_stream.read_events("doomed-worker", 100, 60_000)
    book([event for _, event in batch])  # committed, then the worker "dies" before ack()
    reconcile()  # another worker takes the batch over
    assert_each_booked_once(org, 6)
    assert live_stream.backlog() == 0


def test_a_batch_taken_but_never_booked_is_booked_by_the_next_worker(client, org, settings):
    settings.BILLING_RECLAIM_IDLE_SECONDS = 0
    burst(client, 6)
    live_stream.read_events("doomed-worker", 100, 60_000)  # taken, then the worker "dies"
    reconcile()
    assert_each_booked_once(org, 6)


def _worker_env() -> dict:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        BILLING_REDIS_PREFIX=settings.BILLING_REDIS_PREFIX,
        BILLING_RECONCILE_BATCH="3",
        BILLING_RECLAIM_IDLE_SECONDS="1",
        SECRET_KEY=settings.SECRET_KEY,
        CONN_MAX_AGE="0",
    )
    return env


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=_worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def wait_for(predicate, timeout: float, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.mark.slow
@pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                    reason="needs PostgreSQL and Redis, as in production (CI sets DATABASE_URL and REDIS_URL)")
def test_a_worker_killed_mid_batch_leaves_every_request_charged_exactly_once(client, org):
    from billing.tasks import reconcile_usage

    count = 240
    burst(client, count)
    worker = start_worker()
    try:
        reconcile_usage.delay()
        booked_at_kill = wait_for(lambda: UsageRecord.objects.filter(organization=org).count(), timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert 0 < booked_at_kill < count, (
            f"the kill must land while the worker is still booking: {worker.stderr.read().decode()[-3000:]}"
        )
        assert UsageRecord.objects.filter(organization=org).count() < count
    finally:
        if worker.poll() is None:
            worker.kill()
    worker = start_worker()
    try:
        def all_booked():
            if live_stream.backlog():
                reconcile_usage.delay()
                time.sleep(0.5)
                return False
            return True

        assert wait_for(all_booked, timeout=90, interval=0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert_each_booked_once(org, count)
