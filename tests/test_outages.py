"""Outages and bursts against the Procfile's web process (DESIGN.md "Guarantees under
faults"): Redis or PostgreSQL out of reach is a retryable 503, with no upstream call and
no charge; a burst of cold requests never waits on a database connection held across an
upstream call."""

import concurrent.futures
import contextlib
import json
import subprocess
import time

import pytest
import requests
from django.conf import settings
from django.db import connection

from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import mint_api_key
from tests.conftest import catalog_yaml
from tests.procfile_server import free_port, procfile_web

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                       reason="the Procfile's web process needs PostgreSQL and Redis"),
]

HELLO = [{"role": "user", "content": "Say hello"}]


def chat(base: str, secret: str, model: str = "mock:ok", timeout: float = 30) -> requests.Response:
    return requests.post(f"{base}/v1/chat/completions", timeout=timeout,
                         headers={"Authorization": f"Bearer {secret}"},
                         data=json.dumps({"model": model, "messages": HELLO, "max_tokens": 8}))


def check_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, resp.text[:300]
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
    assert resp.headers["x-should-retry"] == "true" and int(resp.headers["retry-after"]) > 0


@contextlib.contextmanager
def own_redis():
    """A redis-server of this test's own on a free loopback port: (url, stop)."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout != b"PONG\n":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

        def stop():
            server.terminate()
            server.wait(timeout=10)

        yield f"redis://127.0.0.1:{port}/0", stop
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def test_redis_out_of_reach_is_a_retryable_503_with_no_upstream_call(catalog, org):
    _, secret = mint_api_key(org)
    with own_redis() as (redis_url, stop_redis), procfile_web(workers=1, REDIS_URL=redis_url) as base:
        assert chat(base, secret).status_code == 200  # the key, catalog and account are warm
        stop_redis()
        catalog.reset()
        check_unavailable(chat(base, secret))
    assert catalog.requests == []


def test_postgresql_out_of_reach_is_a_retryable_503(catalog, org):
    _, secret = mint_api_key(org)
    refused = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    # The web process must start against a server that refuses; its first request finds out.
    with procfile_web(workers=1, DATABASE_URL=refused) as base:
        check_unavailable(chat(base, secret))
    assert catalog.requests == []


def test_a_burst_after_idle_waits_for_no_database_connection(catalog, org):
    # On main a cold key lookup kept its pooled connection for the whole upstream call:
    # 200 simultaneous requests after 5 s idle gave 140 x 500 (PoolTimeout).
    load_catalog(catalog_yaml(catalog.base_url, timeout=20))  # the mock's "slow" takes 3 s
    _, secret = mint_api_key(org)
    with procfile_web(workers=1, DATABASE_POOL_SIZE="2", GATEWAY_KEY_MEMORY_SECONDS="0.5",
                      GATEWAY_CACHE_SECONDS="1") as base:
        assert chat(base, secret).status_code == 200
        time.sleep(2)  # every memory of the key, the catalog and the account has expired
        with concurrent.futures.ThreadPoolExecutor(200) as pool:
            statuses = list(pool.map(lambda _: chat(base, secret, "mock:slow", timeout=60).status_code, range(200)))
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
