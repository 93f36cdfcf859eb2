"""Admission and settlement: rate window, key spend limit and balance, all or nothing, in
one Redis round trip each way (the embedded default runs the same scripts in process)."""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from django.conf import settings
from django.db import connection

from billing import charging, live, live_scripts
from billing.models import UsageRecord
from billing.money import from_units, to_units
from billing.reconcile import reconcile
from billing.redis_pool import get_redis
from gateway import pipeline
from gateway.keys.api_keys import identity_of, mint_api_key
from gateway.models import ApiKey
from gateway.routing.resilience import RedisCooldowns
from tests.live_threads import wait_until_idle

ROOT = Path(__file__).resolve().parent.parent
PRICES = charging.Prices(Decimal("0.27"), Decimal("1.10"), None)
HELLO = [{"role": "user", "content": "Say hello"}]


def key_of(org, **limits):
    """The KeyIdentity of a fresh key of `org` with these limits."""
    row, _ = mint_api_key(org)
    return dataclasses.replace(identity_of(row), **limits)


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


def held(org) -> Decimal:
    snapshot = live.snapshot(org.pk)  # None: nothing was ever held
    return from_units(snapshot.held) if snapshot else Decimal(0)


def event_fields(key, rid: str, prompt: int, completion: int) -> dict:
    """What gateway.metering.Exchange.settle hands to settlement."""
    return {
        "request_id": rid, "organization_id": key.organization_id, "key_id": key.key_id, "model_id": None,
        "model": "mock:ok", "stream": False, "status": "completed", "http_status": 200, "error_code": None,
        "prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": 0, "reasoning_tokens": 0,
        "basis": "provider", "started_at": datetime.now(UTC).isoformat(), "latency_ms": 5, "ttft_ms": None,
    }


@pytest.mark.django_db
def test_a_request_refused_for_its_balance_leaves_no_trace(org):
    key = key_of(org, rpm_limit=1, spend_limit=Decimal("150"))
    with pytest.raises(charging.InsufficientBalance) as refused:
        live.admit(key, request_id(), Decimal("120"))  # the key allows it, the 100 USD do not
    assert refused.value.available == Decimal("100") and refused.value.needed == Decimal("120")
    # Neither the minute's one request nor 120 USD of the key's 150 were taken.
    window = live.admit(key, request_id(), Decimal("60")).window
    assert window.allowed and window.requests == 1
    assert held(org) == Decimal("60")


@pytest.mark.django_db
def test_a_request_refused_for_the_keys_spend_limit_leaves_no_trace(org):
    key = key_of(org, rpm_limit=1, spend_limit=Decimal("50"))
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(key, request_id(), Decimal("60"))
    assert held(org) == 0
    assert live.admit(key, request_id(), Decimal("40")).window.requests == 1
    assert held(org) == Decimal("40")


@pytest.mark.django_db
def test_rate_limits_are_checked_first(org):
    key = key_of(org, rpm_limit=1, spend_limit=Decimal("1"))
    live.admit(key, request_id(), Decimal("0.5"))
    with pytest.raises(live.RateLimited) as refused:
        live.admit(key, request_id(), Decimal("1000"))  # over both money limits too
    assert not refused.value.window.allowed and refused.value.window.requests == 1
    assert 0 < refused.value.window.reset_seconds <= 60
    assert held(org) == Decimal("0.5")


@pytest.mark.django_db
def test_a_key_without_limits_gets_no_window(org):
    assert live.admit(key_of(org), request_id(), Decimal("1")).window is None
    assert held(org) == Decimal("1")


@pytest.mark.django_db
def test_settling_books_the_cost_everywhere_at_once(org):
    key = key_of(org, tpm_limit=2000, spend_limit=Decimal("1"))
    rid = request_id()
    live.admit(key, rid, Decimal("0.5"))
    cost, balance = live.settle(key, event_fields(key, rid, 1000, 1000), PRICES, 2000)
    assert cost == Decimal("0.00137")
    assert balance == Decimal("100") - cost
    assert held(org) == 0
    # The window counted the 2,000 tokens: the minute is spent.
    with pytest.raises(live.RateLimited) as refused:
        live.admit(key, request_id(), Decimal("0.01"))
    assert refused.value.window.tokens == 2000
    # The key's spend now includes the cost, to the picodollar.
    unlimited_rate = dataclasses.replace(key, tpm_limit=None)
    with pytest.raises(charging.KeySpendLimitReached):
        live.admit(unlimited_rate, request_id(), Decimal("1") - cost + from_units(1))
    live.admit(unlimited_rate, request_id(), Decimal("1") - cost)
    # And the usage event reaches the ledger as before.
    reconcile()
    assert UsageRecord.objects.get(request_id=rid).cost == cost


def test_the_usage_event_is_the_json_it_always_was():
    key = dataclasses.make_dataclass("Key", ["organization_id", "key_id"])(7, 9)
    fields = event_fields(key, "req-1", 1000, 20)
    cost, event = charging.usage_event(fields, charging.Prices(Decimal("0.27"), Decimal("1.10"), Decimal("0.07")))
    expected = dataclasses.asdict(charging.UsageEvent(
        **fields, input_per_mtok="0.27", output_per_mtok="1.10", cached_input_per_mtok="0.07", cost=str(cost),
    ))
    assert json.dumps(event) == json.dumps(expected)


@pytest.mark.django_db
def test_the_exact_balance_check_has_the_last_word(org):
    """Lua compares doubles; above 2**53 picodollars (9,007 USD) Python must catch what
    they cannot tell apart, and take back everything the script held."""
    live.apply_ledger(org.pk, 0, 2**53, 0)  # the account is already loaded: the ledger is not read
    key = key_of(org, rpm_limit=5, spend_limit=Decimal("100000"))
    rid = request_id()
    with pytest.raises(charging.InsufficientBalance):
        live.admit(key, rid, from_units(2**53 + 1))
    redis, layout = live.client(), live.layout()
    assert live.snapshot(org.pk).held == 0
    holds = layout.holds(layout.shard_of(org.pk))
    assert redis.zscore(holds, layout.hold_member(org.pk, key.key_id, rid)) is None
    assert redis.hget(layout.key_spend(org.pk, key.key_id), "held") == "0"
    assert redis.get(layout.window(org.pk, key.key_id)[0]) == "0"


# -- round trips ------------------------------------------------------------------------


@pytest.fixture
def redis_trips(monkeypatch):
    """Every round trip the gateway's own Redis client makes (billing, limits, cooldowns;
    not Django's cache), as (command, first argument), with "upstream" marking the call
    to the model. Counted where commands leave for the socket of the real server."""
    if not settings.REDIS_URL:
        pytest.skip("the embedded default makes no round trips")
    pool = get_redis().connection_pool
    trips = []

    class CountingConnection(pool.connection_class):
        def send_packed_command(self, command, check_health=True):
            packed = command if isinstance(command, bytes) else b"".join(command)
            parts = packed.split(b"\r\n")
            trips.append((parts[2].decode().upper(), parts[4].decode() if len(parts) > 4 else None))
            return super().send_packed_command(command, check_health)

    def upstream_call(chain, call):
        trips.append("upstream")
        return call_with_failover(chain, call)

    call_with_failover = pipeline.call_with_failover
    monkeypatch.setattr(pipeline, "call_with_failover", upstream_call)
    # A warm process checks cooldowns from memory; keep that memory for the whole test
    # however slow the machine, since cooldowns are not what is counted here.
    monkeypatch.setattr(RedisCooldowns, "COOLING_MEMORY_SECONDS", 600.0)
    # Likewise the key: a loaded machine can take longer than the 2 s key memory between
    # the warm-up and the counted request, and a key lookup is not what is counted either.
    monkeypatch.setattr(settings, "GATEWAY_KEY_MEMORY_SECONDS", 600.0)
    monkeypatch.setattr(pool, "connection_class", CountingConnection)
    pool.reset()  # from here on, connections count
    yield trips
    pool.reset()


def sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stream", [False, True], ids=["non-streamed", "streamed"])
def test_a_warm_request_makes_one_round_trip_before_the_upstream_and_one_after(gateway_url, catalog, org,
                                                                               redis_trips, stream):
    row, secret = mint_api_key(org)
    ApiKey.objects.filter(pk=row.pk).update(rpm_limit=100, tpm_limit=100_000, spend_limit=Decimal("5"))
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0, timeout=20)

    def chat():
        if stream:
            for _ in sdk.chat.completions.create(model="demo:echo", messages=HELLO, stream=True):
                pass
        else:
            sdk.chat.completions.create(model="demo:echo", messages=HELLO)
        wait_until_idle()  # a stream settles after its last byte

    chat()  # cold: loads the account and the key's spend, loads the scripts, connects
    redis_trips.clear()
    chat()
    assert redis_trips == [("EVALSHA", sha(live_scripts.ADMIT)), "upstream", ("EVALSHA", sha(live_scripts.SETTLE))]


@pytest.mark.django_db(transaction=True)
def test_a_credit_from_another_process_reaches_admission_within_the_cache_bound(other_org, settings):
    """The credit command runs in its own process: with Redis it publishes to the shared
    store, and the embedded default's in-process store reads the ledger again every
    GATEWAY_CACHE_SECONDS."""
    settings.GATEWAY_CACHE_SECONDS = 1
    key = key_of(other_org)  # an organization with nothing to spend
    with pytest.raises(charging.InsufficientBalance):
        live.admit(key, request_id(), Decimal("1"))
    db = connection.settings_dict
    database_url = (f"sqlite:///{db['NAME']}" if connection.vendor == "sqlite" else
                    f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
    subprocess.run(
        [sys.executable, "manage.py", "credit", "--tenant", other_org.slug, "5"], cwd=ROOT, check=True,
        capture_output=True, env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL,
                                  "BILLING_REDIS_PREFIX": settings.BILLING_REDIS_PREFIX},
    )
    credited = time.monotonic()
    while True:
        try:
            live.admit(key, request_id(), Decimal("1"))
            break
        except charging.InsufficientBalance:
            assert time.monotonic() - credited < settings.GATEWAY_CACHE_SECONDS + 1, "the credit never arrived"
            time.sleep(0.05)


@pytest.mark.django_db
def test_the_sweep_gives_back_the_holds_of_requests_that_never_settled(org, settings):
    key = key_of(org, spend_limit=Decimal("5"))
    abandoned, running = request_id(), request_id()
    live.admit(key, abandoned, Decimal("2"))
    settings.BILLING_RESERVATION_TTL_SECONDS = 7200
    live.admit(key, running, Decimal("1"))
    assert live.release_expired(time.time() + 3601) == 1  # only the first hold has expired
    assert held(org) == Decimal("1")
    assert live.client().hget(live.layout().key_spend(org.pk, key.key_id), "held") == str(to_units(Decimal("1")))
    assert live.release_expired(time.time() + 3601) == 0
    assert live.outstanding_holds() == 1
