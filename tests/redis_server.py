"""A redis-server of the test's own on a free loopback port, with AOF on as the deploy docs
require, that a fault test may stop and start again (never the shared Redis)."""

import contextlib
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

from tests.procfile_server import free_port


class RedisServer:
    def __init__(self, directory: str):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--appendfsync", "everysec", "--dir", self.directory, "--save", "", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()  # answers once the AOF is loaded
                break
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.02)
            finally:
                probe.close()

    def stop(self) -> None:
        """SIGTERM: Redis writes its AOF and exits; every client connection drops."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@contextlib.contextmanager
def own_redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    directory = tempfile.mkdtemp(prefix="mg-redis-")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
