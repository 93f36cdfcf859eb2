"""Tenants and keys at scale: does admission cost the same with 10,000 organizations and
200,000 keys as with one of each, and what does Redis keep for them?

    make bench-tenants    # or: .venv/bin/python bench/tenants.py [--orgs 10000] [--keys 200000] [--write]

Starts the Procfile's processes as bench/run.py does (PostgreSQL, Redis, a fast mock
upstream), bulk-creates the organizations (each with a credit in its ledger) and keys,
then sends non-streamed chat requests at concurrency 1 and measures latency and the web
processes' CPU per request, for: one key; keys never used before, cold at random
(the key looked up in PostgreSQL, the organization's and the key's live state started
from the ledger); the same keys again at once (all warm); and the same keys once their
cached identity expired (the key looked up again, the live state still in Redis). Then
the Redis memory per idle organization and key, their TTLs, and a rebuild of state that
Redis lost. --write puts the table into docs/performance.md ("Tenants, keys and Redis").
"""

import argparse
import asyncio
import os
import random
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import run  # noqa: E402

ROOT = run.ROOT
MARK_BEGIN, MARK_END = "<!-- tenants -->", "<!-- /tenants -->"
LIMITS = {"rpm_limit": 100_000, "tpm_limit": 10_000_000, "spend_limit": Decimal("1000")}  # every key has all three


def setup_django(env: dict) -> None:
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BILLING_REDIS_PREFIX",
                                           "CACHE_KEY_PREFIX")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_tenants(orgs: int, keys: int) -> list[tuple[int, str]]:
    """`orgs` organizations with 1,000 USD each in their ledger and `keys` keys spread over
    them, in bulk; returns (organization id, secret) per key."""
    from django.db import connection, transaction

    from billing.models import Account, LedgerEntry
    from console.tenancy.models import Organization
    from gateway.keys.api_keys import DISPLAY_PREFIX_LENGTH, hash_secret
    from gateway.models import ApiKey

    with transaction.atomic():
        made = Organization.objects.bulk_create(
            [Organization(slug=f"tenant-{i}", name=f"Tenant {i}") for i in range(orgs)], batch_size=5000)
        accounts = Account.objects.bulk_create(
            [Account(organization=o, balance=Decimal("1000")) for o in made], batch_size=5000)
        LedgerEntry.objects.bulk_create(
            [LedgerEntry(account=a, kind=LedgerEntry.Kind.CREDIT, amount=Decimal("1000"), balance_after=Decimal("1000"),
                         reference=f"bench-credit:{a.organization_id}") for a in accounts], batch_size=5000)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Account._meta.db_table} a SET ledger_head = e.id FROM {LedgerEntry._meta.db_table}"
                           " e WHERE e.account_id = a.id AND e.reference LIKE 'bench-credit:%%'")
        issued = [(made[i % orgs].pk, "sk-" + secrets.token_urlsafe(32)) for i in range(keys)]
        ApiKey.objects.bulk_create(
            [ApiKey(organization_id=org_id, prefix=secret[:DISPLAY_PREFIX_LENGTH], secret_hash=hash_secret(secret),
                    **LIMITS) for org_id, secret in issued], batch_size=10_000)
    return issued


def request_with(secret: str) -> bytes:
    return loadgen.build_request(run.HOST, 0, "/v1/chat/completions", run.CHAT, {"Authorization": f"Bearer {secret}"})


class Phase:
    """Latencies and web CPU of one kind of request, gathered over many small blocks."""

    def __init__(self):
        self.latencies: list[float] = []
        self.errors = 0
        self.cpu = 0.0

    def send(self, stack, requests: list[bytes]) -> None:
        pids = stack.web_pids()
        before = run.cpu_seconds(pids)
        result = asyncio.run(loadgen.run_each(run.HOST, stack.gateway_port, requests, 1))
        self.cpu += run.cpu_seconds(pids) - before
        self.latencies += result.latencies
        self.errors += result.errors

    def row(self) -> dict:
        lat, r = self.latencies, loadgen.Result()
        return {"count": len(lat), "errors": self.errors, "p50": r.percentile(lat, 50) * 1000,
                "p99": r.percentile(lat, 99) * 1000, "cpu": self.cpu / max(len(lat), 1) * 1000}


def interleaved(stack, phases: dict[str, list[bytes]], block: int = 100, warm: tuple[str, list[bytes]] = None) -> dict:
    """Send each phase's requests in blocks, taking turns, so that a shared machine's load
    weighs on every phase alike; returns a row per phase. The `warm` phase's keys are used
    once, unmeasured, before each of its blocks: the other phases' blocks take longer than
    a key's identity stays cached (GATEWAY_CACHE_SECONDS)."""
    measured = {name: Phase() for name in phases}
    for start in range(0, max(len(r) for r in phases.values()), block):
        for name, requests in phases.items():
            if requests[start:start + block]:
                if warm and name == warm[0]:
                    Phase().send(stack, warm[1])
                measured[name].send(stack, requests[start:start + block])
    return {name: phase.row() for name, phase in measured.items()}


def wait_booked(client, layout) -> None:
    deadline = time.monotonic() + 60
    while sum(client.xlen(layout.stream(s)) for s in range(layout.shards)) and time.monotonic() < deadline:
        time.sleep(0.2)


def redis_state(client, layout, sample: list[tuple[int, int]]) -> dict:
    """Bytes and TTLs of what an idle organization and key keep in Redis (MEMORY USAGE)."""
    org_id, key_id = sample[0]
    names = {"account": layout.account(org_id), "key spend": layout.key_spend(org_id, key_id),
             "key window (requests)": layout.window(org_id, key_id)[0],
             "key window (tokens)": layout.window(org_id, key_id)[1]}
    state = {}
    for what, name in names.items():
        state[what] = (client.memory_usage(name, samples=0), client.ttl(name))
    accounts = [client.memory_usage(layout.account(o), samples=0) or 0 for o, _ in sample]
    spends = [client.memory_usage(layout.key_spend(o, k), samples=0) or 0 for o, k in sample]
    state["mean account"] = sum(accounts) / len(accounts)
    state["mean key spend"] = sum(spends) / len(spends)
    # Everything the live store keeps (used_memory would count other users of a shared Redis).
    names = list(client.scan_iter(f"{layout.prefix}:*", count=1000))
    state["live store"] = (len(names), sum(client.memory_usage(n, samples=0) or 0 for n in names))
    return state


def rebuilt_exactly(client, layout, org_ids: set[int]) -> tuple[int, int]:
    """How many rebuilt accounts hold the ledger's balance to the picodollar, of how many."""
    from billing.models import Account
    from billing.money import to_units

    ledger = dict(Account.objects.filter(organization_id__in=org_ids).values_list("organization_id", "balance"))
    exact = sum(client.hget(layout.account(o), "balance") == str(to_units(ledger[o])) for o in org_ids)
    return exact, len(org_ids)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=2000, help="per phase")
    parser.add_argument("--write", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args()
    stack = run.Stack(smoke=False)
    baseline_secret = stack.prepare()
    setup_django(stack.env)
    import redis

    from billing.live_layout import Layout
    from gateway.keys.api_keys import hash_secret
    from gateway.models import ApiKey

    ApiKey.objects.filter(secret_hash=hash_secret(baseline_secret)).update(**LIMITS)
    began = time.monotonic()
    issued = create_tenants(args.orgs, args.keys)
    generated = time.monotonic() - began
    client = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    layout = Layout(stack.env["BILLING_REDIS_PREFIX"], 1)
    stack.start()
    try:
        one = [request_with(baseline_secret)] * args.requests
        Phase().send(stack, one[:200])  # warm the processes and the one key
        chosen = random.sample(issued, args.requests + 50)
        cold, warm = chosen[:args.requests], chosen[args.requests:]
        Phase().send(stack, [request_with(s) for _, s in warm])
        rows = interleaved(stack, {
            "one organization, one key": one,
            f"random keys of {args.keys:,}, first use (cold)": [request_with(s) for _, s in cold],
            "50 random keys in turn (warm)": [request_with(s) for _, s in warm] * (args.requests // 50),
        }, warm=("50 random keys in turn (warm)", [request_with(s) for _, s in warm]))
        time.sleep(int(os.environ.get("GATEWAY_CACHE_SECONDS", "5")) + 1)
        rows.update(interleaved(stack, {
            "one organization, one key, again": one,
            "the cold keys again, cached identity expired": [request_with(s) for _, s in cold],
        }))
        wait_booked(client, layout)
        time.sleep(61)  # the rate windows of the sampled keys expire
        ids = dict(ApiKey.objects.filter(secret_hash__in=[hash_secret(s) for _, s in cold[:200]])
                   .values_list("secret_hash", "id"))
        sample = [(org_id, ids[hash_secret(s)]) for org_id, s in cold[:200]]
        state = redis_state(client, layout, sample)
        orgs_touched = (len({org_id for org_id, _ in cold}), len({org_id for org_id, _ in cold + warm}) + 1)
        # What Redis lost (an eviction, a restart without AOF) is started again from the ledger.
        for org_id, key_id in sample:
            client.delete(layout.account(org_id), layout.key_spend(org_id, key_id))
        rows.update(interleaved(stack, {
            "one organization, one key, a third time": one[:200],
            "200 of them, their live state deleted (rebuilt)": [request_with(s) for _, s in cold[:200]],
        }))
        wait_booked(client, layout)
        time.sleep(1)  # the worker publishes the booked balances after its commit
        state["rebuilt exact"] = rebuilt_exactly(client, layout, {org_id for org_id, _ in sample})
    finally:
        stack.stop()
    table = report(args, rows, state, generated, orgs_touched)
    print(table)
    if args.write:
        path = ROOT / "docs" / "performance.md"
        text = path.read_text()
        head, rest = text.split(MARK_BEGIN, 1)
        path.write_text(head + MARK_BEGIN + "\n" + table + "\n" + MARK_END + rest.split(MARK_END, 1)[1])


def report(args, rows: dict, state: dict, generated: float, orgs_touched: tuple[int, int]) -> str:
    lines = ["| requests at concurrency 1 | p50 ms | p99 ms | web CPU ms per request | errors |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu']:.2f} | {r['errors']} |")
    ttl = {what: v[1] for what, v in state.items() if what.startswith(("account", "key "))}
    size = {what: v[0] for what, v in state.items() if what.startswith(("account", "key "))}
    lines += [
        "",
        f"- Data: {args.orgs:,} organizations (a ledger credit each) and {args.keys:,} keys, bulk-created in "
        f"{generated:.1f} s; each phase sends {args.requests:,} requests, the random keys spanning {orgs_touched[0]:,} "
        "organizations.",
        f"- Redis per idle organization: its account hash, {state['mean account']:.0f} bytes (MEMORY USAGE, mean of "
        f"200), no TTL (ttl {ttl['account']}). Per idle key with a spend limit: its spend hash, "
        f"{state['mean key spend']:.0f} bytes, TTL {ttl['key spend']} s (24 reservation TTLs; started again from the "
        f"ledger on the next request); its rate window keys are gone after 60 s (ttl {ttl['key window (requests)']}, "
        f"{size['key window (requests)']}). Once everything was booked and the windows expired, the live store "
        f"held {state['live store'][0]:,} Redis keys in {state['live store'][1]:,} bytes (MEMORY USAGE) for the "
        f"{orgs_touched[1]:,} organizations and {args.requests + 51:,} keys that had made requests.",
        f"- Rebuilt from the ledger after their live state was deleted: {state['rebuilt exact'][0]} of "
        f"{state['rebuilt exact'][1]} accounts hold the ledger's balance to the picodollar once booked.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
