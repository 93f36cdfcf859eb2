"""A real Celery worker keeps booking every tenant's usage while poison events from real
upstream answers sit among them: nothing waits for a reclaim cycle."""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
from django.conf import settings
from django.db import connection

from billing import live, live_stream
from billing.ledger import credit
from billing.models import Account, QuarantinedUsageEvent, UsageRecord
from billing.reconcile import ledger_is_consistent
from billing.tasks import reconcile_usage
from console.tenancy.actions import create_organization
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import OK_COST
from tests.test_booking_poison import HELLO, whale
from tests.test_reconcile_worker import ROOT, _worker_env, wait_for
from tests.upstream_mock import HUGE_TOKENS

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                       reason="needs PostgreSQL and Redis, as in production (CI sets DATABASE_URL and REDIS_URL)"),
]
GOOD_PER_ORG = 200
# Booking is every 2 s in production; a jammed batch would wait the reclaim idle (30 s).
BOOKED_WITHIN_SECONDS = 10


def sdk(gateway_url, org) -> openai.OpenAI:
    _, secret = mint_api_key(org, name="poison test")
    return openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0, timeout=20)


def ask(client, model: str) -> str:
    """The request id of one call; an upstream's refusal is an answer here too."""
    try:
        return client.chat.completions.with_raw_response.create(model=model, messages=HELLO).headers["x-request-id"]
    except openai.APIStatusError as refused:
        return refused.response.headers["x-request-id"]


def test_poison_among_400_events_does_not_hold_up_any_tenant(gateway_url, catalog, org):
    beta, gamma = (create_organization(name, f"owner@{name.lower()}.example") for name in ("Beta", "Gamma"))
    credit(beta.pk, Decimal("100"), note="test credit")
    credit(gamma.pk, Decimal("100"), note="test credit")
    big_spender = whale(create_organization("Whale", "owner@whale.example"))
    alpha_client, beta_client = sdk(gateway_url, org), sdk(gateway_url, beta)
    good = [(alpha_client, "mock:ok")] * GOOD_PER_ORG + [(beta_client, "mock:ok")] * GOOD_PER_ORG
    good[100:100] = [(alpha_client, "mock:fail-400-poison")]  # a code the column cannot take as sent
    good[250:250] = [(sdk(gateway_url, gamma), "mock:huge-usage")]  # 2^40 tokens: widened, booked exactly
    good[300:300] = [(sdk(gateway_url, big_spender), "mock:huge-usage")]  # past the money column: quarantined
    worker = start_worker()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            request_ids = list(pool.map(lambda call: ask(*call), good))
        poisoned = request_ids.pop(300)
        started = time.monotonic()

        def all_booked():
            if UsageRecord.objects.filter(request_id__in=request_ids).count() == len(request_ids):
                return True
            reconcile_usage.delay()  # what beat does every 2 s
            time.sleep(0.2)
            return False

        assert wait_for(all_booked, timeout=60, interval=0), worker_log(worker)
        elapsed = time.monotonic() - started
    finally:
        stop(worker)
    assert elapsed < BOOKED_WITHIN_SECONDS, f"booked in {elapsed:.1f} s"
    kept = QuarantinedUsageEvent.objects.get()
    assert kept.request_id == poisoned and kept.organization == big_spender
    clamped = UsageRecord.objects.get(request_id=request_ids[100])
    assert clamped.error_code.startswith("unusual") and len(clamped.error_code) == 64
    huge = UsageRecord.objects.get(request_id=request_ids[250])
    assert huge.prompt_tokens == huge.completion_tokens == HUGE_TOKENS
    assert Account.objects.get(organization=org).balance == Decimal(100) - GOOD_PER_ORG * OK_COST
    assert Account.objects.get(organization=beta).balance == Decimal(100) - GOOD_PER_ORG * OK_COST
    assert Account.objects.get(organization=gamma).balance == Decimal(100) - huge.cost
    for tenant in (org, beta, gamma, big_spender):
        assert ledger_is_consistent(tenant.pk)
        assert live.snapshot(tenant.pk).pending == 0  # booked or quarantined, none held
    assert live_stream.backlog() == 0


def start_worker() -> subprocess.Popen:
    # Batches of 50, so a poison event shares its batch; the production reclaim idle, so
    # a batch left unacknowledged would show as a wait of 30 s.
    env = {**_worker_env(), "BILLING_RECONCILE_BATCH": "50", "BILLING_RECLAIM_IDLE_SECONDS": "30"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def worker_log(worker: subprocess.Popen) -> str:
    stop(worker)
    return worker.stderr.read().decode()[-3000:]


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
