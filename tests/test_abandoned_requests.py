"""Requests whose web process died before settling: admission writes an intent beside the
holds, settling takes it away, and the sweep books what is left once, as "abandoned",
charged the prompt estimate — however a late settlement races it. Runs on whichever live
store the suite has (the shared Redis in CI, the embedded fakeredis by default)."""

import dataclasses
import logging
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing import abandoned, charging, live
from billing.models import LedgerEntry, UsageRecord
from billing.money import to_units
from billing.reconcile import ledger_is_consistent, reconcile
from gateway.keys.api_keys import identity_of, mint_api_key

PRICES = charging.Prices(Decimal("0.27"), Decimal("1.10"), None)
PROMPT_TOKENS = 1234
# 1,234 prompt tokens at 0.27 USD per million, no output: the charge of an abandoned request.
PROMPT_COST = Decimal("0.00033318")


@pytest.fixture
def key(org):
    row, _ = mint_api_key(org)
    return dataclasses.replace(identity_of(row), spend_limit=Decimal("10"))


def admit(key, amount=Decimal("0.5")) -> str:
    rid = f"req-{uuid.uuid4()}"
    intent = abandoned.intent(rid, key.organization_id, key.key_id, None, "mock:slow-stream", True,
                              PROMPT_TOKENS, PRICES, datetime.now(UTC))
    live.admit(key, rid, amount, intent)
    return rid


def later(settings) -> float:
    return time.time() + settings.GATEWAY_ABANDONED_AFTER_SECONDS + 1


def settle(key, rid: str):
    fields = {
        "request_id": rid, "organization_id": key.organization_id, "key_id": key.key_id, "model_id": None,
        "model": "mock:ok", "stream": False, "status": "completed", "http_status": 200, "error_code": None,
        "prompt_tokens": 1000, "completion_tokens": 1000, "cached_tokens": 0, "reasoning_tokens": 0,
        "basis": "provider", "started_at": datetime.now(UTC).isoformat(), "latency_ms": 5, "ttft_ms": None,
    }
    return live.settle(key, fields, PRICES, 2000)


def intents() -> int:
    store, layout = live.client(), live.layout()
    return sum(store.hlen(layout.intents(shard)) + store.zcard(layout.intents_by_time(shard))
               for shard in range(layout.shards))


def key_spent(key) -> int:
    return int(live.client().hget(live.layout().key_spend(key.organization_id, key.key_id), "spent"))


def assert_booked_once(org, rid: str, status: str, cost: Decimal) -> None:
    record = UsageRecord.objects.get(request_id=rid)
    assert (record.status, record.cost) == (status, cost)
    entry = LedgerEntry.objects.get(reference=f"usage:{rid}")
    assert entry.amount == -cost
    assert ledger_is_consistent(org.pk)
    snapshot = live.snapshot(org.pk)
    assert (snapshot.held, snapshot.pending) == (0, 0) and live.outstanding_holds() == 0
    assert intents() == 0


def test_the_prompt_estimate_is_priced_by_the_one_cost_rule():
    assert charging.cost_of(PRICES, PROMPT_TOKENS, 0) == PROMPT_COST
    cost, event = abandoned.abandoned_event(abandoned.intent(
        "req-1", 1, 2, None, "mock:ok", False, PROMPT_TOKENS, PRICES, datetime.now(UTC)))
    assert cost == PROMPT_COST and Decimal(event["cost"]) == PROMPT_COST
    assert (event["status"], event["prompt_tokens"], event["completion_tokens"]) == ("abandoned", PROMPT_TOKENS, 0)


@pytest.mark.django_db
def test_a_settled_request_leaves_no_intent_and_nothing_to_sweep(org, key, settings):
    rid = admit(key)
    assert intents() == 2  # the intent and its place in time
    settle(key, rid)
    assert intents() == 0
    assert live.book_abandoned(later(settings)) == 0
    reconcile()
    assert UsageRecord.objects.get(request_id=rid).status == "completed"


@pytest.mark.django_db
def test_a_request_nobody_settles_is_booked_once_as_abandoned(org, key, settings):
    rid = admit(key)
    assert live.book_abandoned() == 0  # too young: it may still be streaming
    assert live.book_abandoned(later(settings)) == 1
    assert live.book_abandoned(later(settings)) == 0  # and only once
    reconcile()
    assert_booked_once(org, rid, "abandoned", PROMPT_COST)
    assert UsageRecord.objects.get(request_id=rid).prompt_tokens == PROMPT_TOKENS
    assert key_spent(key) == to_units(PROMPT_COST)  # the key's limit counts it too


@pytest.mark.django_db
def test_a_settlement_after_the_sweep_changes_nothing(org, key, settings, caplog):
    rid = admit(key)
    assert live.book_abandoned(later(settings)) == 1
    with caplog.at_level(logging.WARNING, logger="mixgateway.billing"):
        _, balance = settle(key, rid)  # the request was alive after all, and ends late
    assert balance is None
    assert any(rid in r.getMessage() and "abandoned" in r.getMessage() for r in caplog.records)
    reconcile()
    assert_booked_once(org, rid, "abandoned", PROMPT_COST)
    assert key_spent(key) == to_units(PROMPT_COST)


@pytest.mark.django_db
def test_a_settlement_before_the_sweep_wins(org, key, settings):
    rid = admit(key)
    cost, _ = settle(key, rid)
    assert live.book_abandoned(later(settings)) == 0
    reconcile()
    assert_booked_once(org, rid, "completed", cost)


@pytest.mark.django_db
def test_an_expired_hold_with_an_intent_is_booked_not_let_go(org, key):
    rid = admit(key)
    without_intent = f"req-{uuid.uuid4()}"
    live.admit(key, without_intent, Decimal("0.25"))  # as admitted before intents existed
    assert live.release_expired(time.time() + 3601) == 1  # only the one without an intent is just released
    reconcile()
    assert_booked_once(org, rid, "abandoned", PROMPT_COST)
    assert not UsageRecord.objects.filter(request_id=without_intent).exists()


def test_beat_runs_the_sweep(settings):
    from console.celery import app

    app.loader.import_default_modules()  # what a worker does at start: every app's tasks module
    entry = settings.CELERY_BEAT_SCHEDULE["book-abandoned-requests"]
    assert entry["task"] == "billing.tasks.book_abandoned_requests" and entry["task"] in app.tasks
    assert entry["schedule"] <= 60
