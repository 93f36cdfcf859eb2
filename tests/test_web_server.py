"""The Procfile's own web command under the faults DESIGN.md's "Guarantees under faults"
names: thousands of connections that send nothing, heads trickled a byte at a time, a
stream slower than the header timeout, a database connection that died in the pool, and an
upstream's gzip bomb."""

import json
import resource
import selectors
import socket
import time
from pathlib import Path

import openai
import pytest
import requests
from django.conf import settings
from django.db import connection

from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import mint_api_key
from tests.conftest import catalog_yaml
from tests.procfile_server import procfile_web
from tests.test_http1 import answer, serve  # noqa: F401 (serve is a fixture)
from tests.test_http1_limits import MIB, gzip_bomb
from tests.test_upstream_faults_sdk import COMPLETION

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                       reason="the Procfile's web process needs PostgreSQL and Redis"),
]

IDLE_CONNECTIONS = 3000
HEADER_TIMEOUT = 2.0
# Opening 3,000 connections and serving requests must fit inside it on a loaded machine.
IDLE_HEADER_TIMEOUT = 5.0
HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def open_files_for(request):
    """Raise this process's soft open-file limit (the web process inherits it) to `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def raise_to(needed: int) -> None:
        if soft >= needed:
            return
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the open-file limit ({hard}) is below the {needed} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    yield raise_to
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def closed_within(sockets: list[socket.socket], seconds: float) -> int:
    """How many of `sockets` the server closes within `seconds` (each read to its EOF)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed, deadline = 0, time.monotonic() + seconds
    while closed < len(sockets) and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(timeout=left):
            try:
                data = key.fileobj.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                closed += 1
    selector.close()
    return closed


def test_thousands_of_idle_connections_never_stop_others_and_are_closed_after_the_header_timeout(open_files_for):
    open_files_for(IDLE_CONNECTIONS + 1000)
    # One worker with the default GUNICORN_WORKER_CONNECTIONS (2000): fewer than the idle ones.
    with procfile_web(workers=1, GATEWAY_HEADER_TIMEOUT_SECONDS=str(IDLE_HEADER_TIMEOUT)) as base:
        idle = []
        try:
            opened = time.monotonic()
            for i in range(IDLE_CONNECTIONS):
                sock = socket.create_connection(("127.0.0.1", port_of(base)), timeout=10)
                if i % 10 == 0:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
                idle.append(sock)
            with requests.Session() as http:
                for _ in range(20):
                    assert http.get(f"{base}/healthz", timeout=5).status_code == 200
            assert closed_within(idle, 0.05) == 0  # every idle connection was open while those were served
            assert closed_within(idle, IDLE_HEADER_TIMEOUT + 5) == IDLE_CONNECTIONS
            assert time.monotonic() - opened > IDLE_HEADER_TIMEOUT
            assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        finally:
            for sock in idle:
                sock.close()


def test_a_trickled_head_an_idle_kept_alive_connection_and_a_stalled_body_are_closed():
    with procfile_web(workers=1, GATEWAY_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT)) as base:
        with socket.create_connection(("127.0.0.1", port_of(base))) as trickler, \
                socket.create_connection(("127.0.0.1", port_of(base))) as kept_alive:
            kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert kept_alive.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            trickler.settimeout(0.4)
            closed_at = None
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                try:
                    trickler.sendall(bytes([byte]))
                    if trickler.recv(1) == b"":
                        closed_at = time.monotonic() - started
                        break
                except TimeoutError:
                    continue
                except ConnectionError:
                    closed_at = time.monotonic() - started
                    break
            assert closed_at is not None and closed_at < HEADER_TIMEOUT + 1
            assert closed_within([kept_alive], HEADER_TIMEOUT + 1) == 1
        with socket.create_connection(("127.0.0.1", port_of(base))) as body_staller:
            body_staller.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\": ")
            assert closed_within([body_staller], HEADER_TIMEOUT + 3) == 1  # its slot is not held for ever


def test_a_stream_slower_than_the_header_timeout_is_not_cut(catalog, org):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))  # the mock pauses 3 s mid-stream
    _, secret = mint_api_key(org)
    with procfile_web(workers=1, GATEWAY_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT)) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0, timeout=30)
        started = time.monotonic()
        parts = list(client.chat.completions.create(model="mock:slow-stream", messages=HELLO, stream=True,
                                                    stream_options={"include_usage": True}))
        assert time.monotonic() - started > HEADER_TIMEOUT
        assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
        assert parts[-1].usage is not None


def test_worker_connections_bound_the_requests_in_progress_not_the_connections_held(catalog, org):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))  # the mock pauses 3 s mid-stream
    _, secret = mint_api_key(org)
    with procfile_web(workers=1, GUNICORN_WORKER_CONNECTIONS="1") as base:
        with socket.create_connection(("127.0.0.1", port_of(base))) as idle:
            assert requests.get(f"{base}/healthz", timeout=5).status_code == 200  # the idle one holds no slot
            client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0, timeout=30)
            stream = client.chat.completions.create(model="mock:slow-stream", messages=HELLO, stream=True)
            next(iter(stream))  # the one slot is taken until the stream ends, 3 s from now
            started = time.monotonic()
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started > 1.5  # it waited for the slot
            list(stream)
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_database_connection_that_died_in_the_pool_is_replaced_before_use():
    with procfile_web(workers=1) as base:
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200  # the pool holds a connection now
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            assert cursor.fetchall()  # the web process's pooled connection, dropped as a restart would
        answer = requests.get(f"{base}/readyz", timeout=10)
        assert (answer.status_code, answer.json()["checks"]["database"]) == (200, "ok")


def peak_memory_of_workers(port: int) -> int:
    """The largest VmHWM (bytes) among the gunicorn workers serving `port`."""
    serving = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"0.0.0.0:{port}" in (proc / "cmdline").read_text():
                status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines())
                serving[proc.name] = (status["PPid"].strip(), int(status["VmHWM"].split()[0]) * 1024)
        except (OSError, KeyError, ValueError):
            continue
    workers = [peak for parent, peak in serving.values() if parent in serving]  # the master's children
    assert workers, "no gunicorn worker found"
    return max(workers)


def test_a_gzip_bomb_is_a_502_and_leaves_the_web_workers_memory_bounded(catalog, org, serve):  # noqa: F811
    bomb = gzip_bomb(1024)  # 1 GiB inflated, about 1 MB on the wire; the cap is the default 64 MiB
    server = serve(lambda request: [answer(bomb, headers="Content-Encoding: gzip\r\n")]
                   if json.loads(request.split(b"\r\n\r\n", 1)[1]).get("user") == "bomb" else [answer(COMPLETION)])
    load_catalog(catalog_yaml(server.url().removesuffix("/chat/completions")))
    _, secret = mint_api_key(org)
    with procfile_web(workers=1) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0, timeout=60)
        assert client.chat.completions.create(model="mock:ok", messages=HELLO).choices[0].message.content == "Hello"
        before = peak_memory_of_workers(port_of(base))
        with pytest.raises(openai.APIStatusError) as failure:
            client.chat.completions.create(model="mock:ok", messages=HELLO, user="bomb")
        assert (failure.value.status_code, failure.value.body["code"]) == (502, "upstream_error")
        grown = peak_memory_of_workers(port_of(base)) - before
        assert grown < 128 * MIB, f"the worker's peak memory grew by {grown / MIB:.0f} MiB"
        assert client.chat.completions.create(model="mock:ok", messages=HELLO).choices[0].message.content == "Hello"
