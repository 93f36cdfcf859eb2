"""What resolving a presented secret costs, tier by tier, in one process shaped like a web
worker (gevent patched, so PostgreSQL through the per-process pool with its health check).

    .venv/bin/python bench/cold_keys.py [--keys 20000] [--lookups 2000] [--rounds 3]

bench/tenants.py measures the whole request through gunicorn; its "cached identity
expired" row is this script's "database" tier plus the rest of a warm request. Here the
key lookup alone (gateway.keys.api_keys.find_key, then the pool checkout handed back as
the request path does after admission) is timed for random keys of --keys:
- database: neither the process's memory nor Redis has the key (a key idle for
  GATEWAY_CACHE_SECONDS): Redis GET, the PostgreSQL lookup, Redis SET;
- redis: the process's memory does not have it, Redis does (idle GATEWAY_KEY_MEMORY_SECONDS);
- memory: seen by this process within GATEWAY_KEY_MEMORY_SECONDS.
Rounds take turns so a shared machine's load weighs on every tier alike; the table shows
the best round's CPU (process time) and wall time per lookup, and the statements and
Redis commands one database-tier lookup sends.

Uses BENCH_DATABASE_URL (recreated at every run) and BENCH_REDIS_URL (only names under
its own prefix are written or deleted).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "mgcoldbench"


def setup(database_url: str, redis_url: str) -> None:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "BILLING_REDIS_PREFIX": PREFIX,
                       "CACHE_KEY_PREFIX": PREFIX + "cache", "DJANGO_SETTINGS_MODULE": "console.settings"})
    os.environ.setdefault("SECRET_KEY", "insecure-bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def lookup_all(secrets: list[str], forget_memory: bool, forget_redis: bool) -> tuple[float, float]:
    """CPU and wall seconds per lookup of each secret, with the chosen tiers emptied first."""
    from django.db import connections

    from gateway.keys import api_keys, key_cache

    cpu = wall = 0.0
    for secret in secrets:
        secret_hash = api_keys.hash_secret(secret)
        if forget_memory:
            api_keys._memory.pop(secret_hash, None)  # this key only: the others stay remembered
        if forget_redis:
            key_cache.forget(secret_hash)
        began_cpu, began = time.process_time(), time.perf_counter()
        identity = api_keys.find_key(secret)
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()  # the pool checkout goes back, as after admission
        cpu += time.process_time() - began_cpu
        wall += time.perf_counter() - began
        assert identity is not None and not identity.revoked
    return cpu / len(secrets), wall / len(secrets)


def sent_by_one_lookup(secret: str) -> tuple[list[str], list[str], int]:
    """The SQL statements, Redis commands and pool health checks of one database-tier
    lookup (the checks are psycopg_pool's, on checkout: Django's query log misses them)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.redis_pool import get_redis
    from gateway.keys import api_keys, key_cache

    api_keys.forget_remembered_keys()
    key_cache.forget(api_keys.hash_secret(secret))
    client, commands = get_redis(), []
    original = client.execute_command

    def counted(*args, **kwargs):
        commands.append(str(args[0]))
        return original(*args, **kwargs)

    pool, checks = connection.pool, []
    check = pool._check

    def counted_check(conn):
        checks.append(conn)
        return check(conn)

    client.execute_command, pool._check = counted, counted_check
    try:
        with CaptureQueriesContext(connection) as queries:
            api_keys.find_key(secret)
            connection.close_if_unusable_or_obsolete()
    finally:
        del client.execute_command
        pool._check = check
    return [q["sql"] for q in queries.captured_queries], commands, len(checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=2000, help="per tier and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup(os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mixgateway_bench"),
          os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    from django.db import connection

    from billing.redis_pool import get_redis
    from tenants import create_tenants

    for name in get_redis().scan_iter(f"{PREFIX}*", count=1000):
        get_redis().delete(name)
    assert connection.pool is not None, "not the web worker's shape: no connection pool"
    issued = [secret for _, secret in create_tenants(max(1, args.keys // 20), args.keys)]
    lookup_all(random.sample(issued, 200), True, True)  # warm the code, the pool and PostgreSQL's cache
    best = {tier: (float("inf"), float("inf")) for tier in ("database", "redis", "memory")}
    for _ in range(args.rounds):
        chosen = random.sample(issued, args.lookups)
        for tier, forget in {"database": (True, True), "redis": (True, False), "memory": (False, False)}.items():
            best[tier] = min(best[tier], lookup_all(chosen, *forget))
    statements, commands, checks = sent_by_one_lookup(random.choice(issued))
    print(f"| find_key, random keys of {args.keys:,} | CPU µs per lookup | wall µs per lookup |")
    print("|---|---|---|")
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        chosen = random.sample(issued, args.lookups)
        cProfile.runctx("lookup_all(chosen, True, True)", globals(), locals(), sort="cumulative")
    for tier, (cpu, wall) in best.items():
        print(f"| {tier} | {cpu * 1e6:.0f} | {wall * 1e6:.0f} |")
    print(f"\nOne database-tier lookup: {len(statements)} SQL statement(s), {checks} pool health check(s), "
          f"Redis {' + '.join(commands)}")
    for sql in statements:
        print(f"  {sql}")


if __name__ == "__main__":
    main()
