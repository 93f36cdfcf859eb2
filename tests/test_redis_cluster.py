"""The product on a real Redis Cluster (three masters, three replicas, on loopback): the live
store's tests run again on it, every script stays in one slot, and a master killed
mid-traffic loses nothing DESIGN.md promises ("Guarantees under faults")."""

import os
import time
import uuid
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.db import connection
from redis.crc import key_slot

from billing import live, redis_pool
from billing.ledger import credit
from billing.live_layout import Layout
from billing.models import Account, SettlementOutbox, UsageRecord
from billing.reconcile import ledger_is_consistent, reconcile
from console.redis_cluster_cache import RedisClusterCache
from console.tenancy.actions import create_organization
from gateway.keys.api_keys import mint_api_key
from gateway.models import ApiKey
from gateway.observability import check_redis
from tests.conftest import clear_billing_store
from tests.procfile_server import procfile_web
from tests.redis_cluster import own_redis_cluster

# The live store's own tests, collected here once more and run on the cluster.
from tests.test_admission import (  # noqa: F401
    PRICES, event_fields, key_of, test_a_key_without_limits_gets_no_window,
    test_a_request_refused_for_its_balance_leaves_no_trace,
    test_a_request_refused_for_the_keys_spend_limit_leaves_no_trace, test_rate_limits_are_checked_first,
    test_settling_books_the_cost_everywhere_at_once, test_the_exact_balance_check_has_the_last_word,
    test_the_sweep_gives_back_the_holds_of_requests_that_never_settled,
)
from tests.test_billing_concurrency import (  # noqa: F401
    test_fifty_parallel_requests_never_overdraw_a_balance_covering_ten,
)
from tests.test_rate_limits import (  # noqa: F401
    test_a_keys_spend_limit_stops_it_before_the_limit_is_passed,
    test_requests_beyond_the_rpm_limit_get_429_with_retry_after, test_tokens_beyond_the_tpm_limit_get_429,
)
from tests.test_reconcile_worker import (  # noqa: F401
    test_a_batch_booked_but_never_acknowledged_is_not_booked_again,
    test_a_batch_taken_but_never_booked_is_booked_by_the_next_worker,
)

SHARDS = 16
# Their modules mark them for the live server's transactional database; here that mark is
# theirs alone, so the tests below that need no database do not pay a flush each.
for _test in (test_fifty_parallel_requests_never_overdraw_a_balance_covering_ten,
              test_a_keys_spend_limit_stops_it_before_the_limit_is_passed,
              test_requests_beyond_the_rpm_limit_get_429_with_retry_after, test_tokens_beyond_the_tpm_limit_get_429,
              test_a_batch_booked_but_never_acknowledged_is_not_booked_again,
              test_a_batch_taken_but_never_booked_is_booked_by_the_next_worker):
    pytest.mark.django_db(transaction=True)(_test)


@pytest.fixture(scope="session")
def redis_cluster():
    with own_redis_cluster() as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def on_the_cluster(redis_cluster, settings):
    """This process's live store, key cache and cooldowns on the cluster."""
    original_client = redis_pool._client
    settings.REDIS_URL, settings.REDIS_CLUSTER, settings.BILLING_REDIS_SHARDS = redis_cluster.url, True, SHARDS
    redis_pool._client = None
    clear_billing_store()
    try:
        yield redis_cluster
    finally:
        clear_billing_store()
        if redis_pool._client is not None:
            redis_pool._client.close()
        redis_pool._client = original_client


def test_every_key_of_an_organization_is_in_one_slot():
    layout = Layout("mgbill", SHARDS)
    for org_id in (1, 2, 17, 10_000):
        shard = layout.shard_of(org_id)
        keys = [layout.account(org_id), layout.holds(shard), layout.stream(shard), layout.key_spend(org_id, 99),
                *layout.window(org_id, 99)]
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys


def test_the_shards_spread_evenly_over_the_masters(redis_cluster):
    layout = Layout("mgbill", SHARDS)
    masters = [redis_cluster.master_of(layout.stream(shard)) for shard in range(SHARDS)]
    assert sorted(masters.count(m) for m in set(masters)) == [5, 5, 6]


def test_the_readiness_check_asks_the_cluster():
    check_redis()  # raises if no node named in the URL says cluster_state:ok


def test_djangos_cache_follows_the_slots(redis_cluster):
    cache = RedisClusterCache(redis_cluster.url, {"KEY_PREFIX": f"mgtest-cache-{uuid.uuid4().hex[:8]}"})
    many = {f"k{i}": i for i in range(50)}  # fifty keys over many slots and all three masters
    cache.set_many(many, 60)
    assert cache.get_many(list(many)) == many
    assert cache.add("lock", True, 5) and not cache.add("lock", True, 5)
    cache.set("history", [1.5, 2.5], 60)
    assert cache.get("history") == [1.5, 2.5]
    cache.delete_many(["k1", "k2"])
    assert cache.get("k1") is None and cache.get("k3") == 3
    cache.clear()
    assert cache.get_many(list(many)) == {} and cache.get("lock") is None


def other_org(i: int):
    org = create_organization(f"Elsewhere {i}", f"owner{i}@elsewhere.example")
    credit(org.pk, Decimal("10"))
    return org


def replicated(cluster, master: int, replica: int) -> bool:
    offset = cluster.node(master).info("replication")["master_repl_offset"]
    return cluster.node(replica).info("replication")["slave_repl_offset"] >= offset


@pytest.mark.django_db
def test_a_master_killed_mid_traffic_loses_no_settlement(redis_cluster, org):
    """The cluster keeps serving afterwards with one master short of a replica: the killed
    node stays down (bringing it back as a replica costs seconds and proves nothing here)."""
    key = key_of(org, tpm_limit=1_000_000, spend_limit=Decimal("50"))
    layout = live.layout()
    master = redis_cluster.master_of(layout.account(org.pk))
    replica = redis_cluster.replica_of(master)
    rids = [f"req-{uuid.uuid4()}" for _ in range(6)]
    for rid in rids:
        live.admit(key, rid, Decimal("0.5"))
    for rid in rids[:2]:  # settled before the fault: their events wait in the stream
        live.settle(key, event_fields(key, rid, 1000, 1000), PRICES, 2000)
    redis_cluster.wait(lambda: replicated(redis_cluster, master, replica), "the replica did not catch up")

    elsewhere = next(o for o in (other_org(i) for i in range(20))
                     if redis_cluster.master_of(layout.account(o.pk)) != master)
    elsewhere_key = key_of(elsewhere)

    redis_cluster.kill(master)
    killed = time.monotonic()
    with pytest.raises(live.LiveStoreUnavailable):  # nothing is held, nothing forwarded: a 503
        live.admit(key, f"req-{uuid.uuid4()}", Decimal("0.5"))
    for rid in rids[2:4]:  # the live store cannot take these: they go to the outbox
        live.settle(key, event_fields(key, rid, 1000, 1000), PRICES, 2000)
    assert SettlementOutbox.objects.count() == 2
    # Until the replica takes over, the cluster may refuse every slot (CLUSTERDOWN): other
    # masters' organizations get a clean "unavailable" (a 503) or are served, nothing else.
    admitted, refused = [], 0
    while redis_cluster.node(replica).info("replication")["role"] != "master":
        rid = f"req-{uuid.uuid4()}"
        try:
            live.admit(elsewhere_key, rid, Decimal("0.01"))
            admitted.append(rid)
        except live.LiveStoreUnavailable:
            refused += 1
        time.sleep(0.05)
    redis_cluster.wait_until_master(replica)
    promoted = time.monotonic() - killed
    for rid in admitted:
        live.release(elsewhere.pk, elsewhere_key.key_id, rid)
    assert live.snapshot(elsewhere.pk).held == 0
    for rid in rids[4:]:  # after the promotion, on the replica that took over
        live.settle(key, event_fields(key, rid, 1000, 1000), PRICES, 2000)

    reconcile()
    cost = Decimal("0.00137")
    assert UsageRecord.objects.filter(organization=org).count() == 6
    assert Account.objects.get(organization=org).balance == Decimal("100") - 6 * cost
    assert ledger_is_consistent(org.pk)
    assert not SettlementOutbox.objects.exists() and live.backlog() == 0
    snapshot = live.snapshot(org.pk)
    assert (snapshot.held, snapshot.pending) == (0, 0) and live.outstanding_holds() == 0
    spent, held = live.client().hmget(layout.key_spend(org.pk, key.key_id), "spent", "held")
    assert (int(spent), int(held)) == (6 * 1_370_000_000, 0)  # the key's spend counts each once
    print(f"master {master} killed; replica {replica} promoted after {promoted:.1f} s; meanwhile another master's"
          f" organization was served {len(admitted)} times and refused {refused}")




@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                    reason="the Procfile's web needs PostgreSQL, and a single Redis for Celery's broker")
def test_the_procfile_web_serves_from_the_cluster(redis_cluster, catalog, org):
    """The product as deployed: REDIS_URL a cluster URL, Celery's broker a single Redis."""
    row, secret = mint_api_key(org)
    ApiKey.objects.filter(pk=row.pk).update(rpm_limit=3)
    broker = os.environ["REDIS_URL"]  # the suite's single Redis; settings.REDIS_URL is the cluster here
    with procfile_web(workers=1, REDIS_URL=redis_cluster.url, CELERY_BROKER_URL=broker) as base:
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok", ready.text
        statuses = [requests.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"},
                                  json={"model": "mock:ok", "messages": [{"role": "user", "content": "Hi"}]},
                                  timeout=30).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        deadline = time.monotonic() + 10
        while UsageRecord.objects.filter(organization=org).count() < 3 and time.monotonic() < deadline:
            reconcile()  # this process books from the same cluster
            time.sleep(0.05)
    assert UsageRecord.objects.filter(organization=org).count() == 3
    assert ledger_is_consistent(org.pk)
