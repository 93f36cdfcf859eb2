"""Waiting for the live server to finish its requests before a test's database goes away.

The gateway settles a stream's cost after it has sent the last event, so a client can be
done with a stream while the server thread still runs; if the test ended then, that
thread would touch a database that pytest-django has already locked or flushed.
"""

import threading
import time

import pytest


def busy_request_threads(live_server) -> list[threading.Thread]:
    httpd = live_server.thread.httpd
    return [
        t for t in threading.enumerate()
        if t.is_alive() and getattr(getattr(t, "_target", None), "__self__", None) is httpd
    ]


def wait_until_idle(live_server, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while busy_request_threads(live_server) and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def settle_live_server(request):
    """Use as a module's autouse fixture: after a live-server test, close the SDK client
    (its keep-alive connections hold server threads) and wait for the server to go idle."""
    yield
    if "live_server" not in request.fixturenames:
        return
    client = request.node.funcargs.get("client")
    if client is not None:
        client.close()
    wait_until_idle(request.getfixturevalue("live_server"))
