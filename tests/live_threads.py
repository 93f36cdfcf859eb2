"""Waiting for the live server to finish its requests before a test's database goes away.

The gateway settles a stream's cost after it has sent the last event, so a client can be
done with a stream while the server thread still works on it; if the test ended then,
that thread would touch a database that pytest-django has already locked or flushed.
Requests are counted from Django's request_started to request_finished (sent when the
server closes the response, after the stream's generator has run to its end).
"""

import threading
import time

from django.core.signals import request_finished, request_started

_lock = threading.Lock()
_in_flight = 0


def _started(**kwargs):
    global _in_flight
    with _lock:
        _in_flight += 1


def _finished(**kwargs):
    global _in_flight
    with _lock:
        _in_flight = max(0, _in_flight - 1)


request_started.connect(_started, dispatch_uid="tests.live_threads.started")
request_finished.connect(_finished, dispatch_uid="tests.live_threads.finished")


def requests_in_flight() -> int:
    with _lock:
        return _in_flight


def wait_until_idle(timeout: float = 5.0) -> None:
    global _in_flight
    deadline = time.monotonic() + timeout
    while requests_in_flight() and time.monotonic() < deadline:
        time.sleep(0.005)
    with _lock:
        # A request whose response was never closed (a caller that vanished, a test that
        # dropped a stream unread) never sends request_finished. Counted on, it would make
        # every later test of this process wait the whole timeout: wait for it once.
        _in_flight = 0
