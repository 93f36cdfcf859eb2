"""The Procfile's own web command as a test server: the worker model production runs,
against the test database and Redis."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_masters: dict[str, int] = {}  # base URL -> the gunicorn master's pid


def web_worker_pids(base: str) -> list[int]:
    """The gunicorn workers (the master's children) serving `base` (Linux /proc)."""
    master = _masters[base]
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def web_command() -> str:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web: "))
    return line.split(": ", 1)[1].replace("gunicorn ", f"{sys.executable} -m gunicorn ", 1)


@contextlib.contextmanager
def procfile_web(workers: int = 2, **extra_env):
    """Yield the base URL of the Procfile's web process, serving the test database."""
    db = connection.settings_dict
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
           f"{db['PORT'] or 5432}/{db['NAME']}", "REDIS_URL": settings.REDIS_URL,
           "BILLING_REDIS_PREFIX": settings.BILLING_REDIS_PREFIX, "SECRET_KEY": settings.SECRET_KEY,
           "CACHE_KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "CONN_MAX_AGE": "0", "PORT": str(port),
           "WEB_CONCURRENCY": str(workers), **extra_env}
    server = subprocess.Popen(["bash", "-c", "exec " + web_command()], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.environ.get("TEST_WEB_LOG", os.devnull), "w"))
    base = f"http://127.0.0.1:{port}"
    _masters[base] = server.pid  # `exec`: bash became gunicorn's master
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the Procfile's web process did not start")
                time.sleep(0.2)
        yield base
    finally:
        _masters.pop(base, None)
        server.terminate()
        server.wait(timeout=30)
