"""The production worker model holds many open streams at once: the Procfile's web
process (gevent greenlets, one per stream) serves more concurrent streams than any
per-process pool has connections, and bills every one of them exactly once."""

import asyncio
import json
import time

import pytest
from django.conf import settings
from django.db import connection

from billing.models import UsageRecord
from billing.reconcile import reconcile
from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import mint_api_key
from tests.conftest import catalog_yaml
from tests.procfile_server import procfile_web

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                       reason="the Procfile's web process needs PostgreSQL and Redis"),
]

STREAMS = 300
# Pools far smaller than the streams: a burst must wait for a connection, not fail, and a
# stream must not hold a database connection while it relays.
SMALL_POOLS = {"REDIS_MAX_CONNECTIONS": "4", "DATABASE_POOL_SIZE": "2", "GATEWAY_UPSTREAM_POOL_SIZE": "8"}
BODY = json.dumps({"model": "mock:slow-stream", "stream": True, "max_tokens": 8,
                   "messages": [{"role": "user", "content": "Say hello"}]}).encode()


async def open_streams(port: int, secret: str, count: int):
    """Open `count` streams at once; report how many started (200 and a first chunk)
    while all of them were still open, then read each to its end."""
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Authorization: Bearer {secret}\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
               ).encode() + BODY
    started = asyncio.Event()
    heads: list[bytes] = []

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head[9:12])
        if len(heads) == count:
            started.set()
        rest = await reader.read()  # Connection: close, so the end of the body is EOF
        writer.close()
        return rest

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    # The mock holds each stream open for 3 s after its first chunk, so every head must
    # arrive while the others are still open.
    await asyncio.wait_for(started.wait(), timeout=30)
    bodies = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return heads, bodies


def test_the_procfile_web_process_holds_hundreds_of_streams_and_bills_each_once(catalog, org):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))  # the mock's stream pauses 3 s
    _, secret = mint_api_key(org)
    with procfile_web(workers=1, **SMALL_POOLS) as base:
        port = int(base.rsplit(":", 1)[1])
        heads, bodies = asyncio.run(open_streams(port, secret, STREAMS))
    assert heads.count(b"200") == STREAMS, {h: heads.count(h) for h in set(heads)}
    assert all(b"data: [DONE]" in body and b'"usage"' in body for body in bodies)
    reconcile()
    assert UsageRecord.objects.filter(organization=org, status="completed").count() == STREAMS


def test_a_caller_who_hangs_up_mid_stream_is_billed_for_what_it_received(catalog, org):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))
    _, secret = mint_api_key(org)

    async def hang_up_after_first_chunk(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer "
                      f"{secret}\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()
                     + BODY)
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readuntil(b"\n\n")  # the first event
        writer.transport.abort()  # gone, without a word
        return head

    with procfile_web(workers=1) as base:
        head = asyncio.run(hang_up_after_first_chunk(int(base.rsplit(":", 1)[1])))
        # The gateway finds out when it next writes, after the mock's 3 s pause.
        deadline = time.monotonic() + 20
        while not UsageRecord.objects.filter(organization=org).exists() and time.monotonic() < deadline:
            reconcile()
            time.sleep(0.25)
    assert head.startswith(b"HTTP/1.1 200")
    record = UsageRecord.objects.get(organization=org)
    assert (record.status, record.basis) == ("client_gone", "partial")
    assert record.prompt_tokens > 0 and record.cost > 0


def test_a_key_revoked_elsewhere_stops_working_in_the_web_process_within_seconds(catalog, org):
    import requests

    from gateway.keys.api_keys import revoke_api_key

    key, secret = mint_api_key(org)
    body = {"model": "demo:echo", "messages": [{"role": "user", "content": "Say hello"}]}
    with procfile_web(workers=1) as base:
        url, headers = f"{base}/v1/chat/completions", {"Authorization": f"Bearer {secret}"}
        assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 200  # remembered now
        revoke_api_key(key)  # this process: the database and the shared cache, not the server's memory
        revoked_at = time.monotonic()
        while (status := requests.post(url, json=body, headers=headers, timeout=10).status_code) == 200:
            assert time.monotonic() - revoked_at < 10, "the revocation never reached the web process"
            time.sleep(0.1)
        waited = time.monotonic() - revoked_at
    assert status == 401
    # Bounded by the process's key memory (GATEWAY_KEY_MEMORY_SECONDS, 2 s), with slack for a busy machine.
    assert waited < 2 + 3
