"""Booking throughput: usage events per second that booking workers write into PostgreSQL,
with the ledger kept exact.

    .venv/bin/python bench/booking.py [--events 50000] [--workers 1 2] [--spread 1:1 1:1000 20:50]

Queues N usage events in the live store's stream exactly as settling does (same fields,
same Redis layout), then starts W worker processes, each running billing.reconcile.reconcile
(the code the Celery task reconcile_usage runs, batch by batch) until the stream is empty,
and times from the first event booked to the last. Afterwards every event must be booked
exactly once and ledger_is_consistent must hold. --keys spreads the events over that many
keys in as many organizations (the per-key last_used_at write was the cost when every
request had its own key; an organization's account is locked while a batch books it, so
only events of several organizations can use two workers at once).
Use a database and a Redis database of their own (DATABASE_URL, REDIS_URL).
"""

import argparse
import json
import multiprocessing
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import history  # noqa: E402

SLUG = "booking-bench"


def prepare(events: int, keys: int, orgs: int) -> list[int]:
    from billing import live
    from billing.charging import UsageEvent
    from billing.ledger import account_for, balance_of, credit
    from console.tenancy.models import Organization
    from gateway.keys.api_keys import mint_api_key
    from gateway.models import ApiKey

    tenants = []  # (organization id, its key ids)
    for n in range(orgs):
        org, _ = Organization.objects.get_or_create(slug=f"{SLUG}-{n}", defaults={"name": f"Booking bench {n}"})
        account_for(org.pk)
        have = list(ApiKey.objects.filter(organization=org).order_by("pk").values_list("pk", flat=True))
        while len(have) < keys:
            have.append(mint_api_key(org, name=f"booking {len(have)}")[0].pk)
        if balance_of(org.pk) < Decimal("50000"):  # topped up, not credited every run (the balance is a bigint)
            credit(org.pk, Decimal("100000"), note="booking bench")
        tenants.append((org.pk, have[:keys]))
    cost = Decimal("0.00024")  # 800 + 200 tokens at 0.15 / 0.60 USD per million
    now = datetime.now(UTC).isoformat()
    redis, lay = live.client(), live.layout()
    pipe = redis.pipeline(transaction=False)
    for i in range(events):
        event = UsageEvent(
            request_id=f"bench-{uuid.uuid4()}", organization_id=tenants[i % orgs][0],
            key_id=tenants[i % orgs][1][i // orgs % keys], model_id=None,
            model="openai:gpt-4o-mini", stream=True, status="completed", http_status=200, error_code=None,
            prompt_tokens=800, completion_tokens=200, cached_tokens=0, reasoning_tokens=0, basis="provider",
            input_per_mtok="0.15", output_per_mtok="0.60", cached_input_per_mtok=None, cost=str(cost),
            started_at=now, latency_ms=300, ttft_ms=80,
        ).__dict__
        pipe.xadd(lay.stream(lay.shard_of(event["organization_id"])), {"e": json.dumps(event)})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return [org_id for org_id, _ in tenants]


def work(ready, go, done):
    history.setup_django()
    from django.db import connection

    from billing.reconcile import reconcile

    connection.ensure_connection()
    ready.put(1)
    go.wait()
    booked = 0
    while n := reconcile(max_batches=50):
        booked += n
    done.put((time.time(), booked))


def run(events: int, workers: int, keys: int, orgs: int) -> dict:
    from django.db import connection

    from billing.models import UsageRecord
    from billing.reconcile import ledger_is_consistent

    org_ids = prepare(events, keys, orgs)
    before = UsageRecord.objects.filter(organization_id__in=org_ids).count()
    connection.close()  # the workers are forked: none may share this connection
    ctx = multiprocessing.get_context("fork")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=work, args=(ready, go, done)) for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    start = time.time()
    go.set()
    ends = [done.get() for _ in procs]
    for p in procs:
        p.join()
    seconds = max(end for end, _ in ends) - start
    booked = UsageRecord.objects.filter(organization_id__in=org_ids).count() - before
    return {"events": events, "workers": workers, "organizations": orgs, "keys_each": keys, "booked": booked,
            "seconds": round(seconds, 2), "events_per_second": round(booked / seconds),
            "ledger_is_consistent": all(ledger_is_consistent(org_id) for org_id in org_ids)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--spread", nargs="+", default=["1:1", "1:1000", "20:50"],
                        help="ORGS:KEYS, the organizations the events are spread over and keys in each (an "
                             "account is booked by one worker at a time, so one organization cannot use two)")
    args = parser.parse_args()
    history.setup_django()
    from django.conf import settings

    if not settings.REDIS_URL:
        sys.exit("bench/booking.py measures the production shape: set REDIS_URL (and DATABASE_URL)")
    for spread in args.spread:
        orgs, keys = (int(n) for n in spread.split(":"))
        for workers in args.workers:
            result = run(args.events, workers, keys, orgs)
            print(json.dumps(result), flush=True)
            if result["booked"] != args.events or not result["ledger_is_consistent"]:
                sys.exit("booking lost, doubled or mis-summed events")


if __name__ == "__main__":
    main()
