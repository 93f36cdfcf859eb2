"""`make bench` keeps working: a smoke run (a few requests per scenario) of the real
benchmark, with the Procfile's processes, PostgreSQL and Redis. No timing is asserted;
the benchmark itself exits non-zero when the gateway answered anything but cleanly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not settings.REDIS_URL or connection.vendor != "postgresql",
                       reason="the benchmark runs the production shape: PostgreSQL and Redis"),
]


def test_a_smoke_run_of_the_benchmark_measures_every_scenario(tmp_path):
    db = connection.settings_dict
    server = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    # A Redis database of its own: the benchmark's Celery worker and beat must not take the
    # test suite's tasks, nor the other way round.
    redis_server, _, number = settings.REDIS_URL.rpartition("/")
    redis_url = f"{redis_server}/9" if number.isdigit() else settings.REDIS_URL.rstrip("/") + "/9"
    env = {**os.environ, "BENCH_DATABASE_URL": f"{server}/mixgateway_bench_smoke{worker}",
           "BENCH_REDIS_URL": redis_url}
    output = tmp_path / "performance.md"
    done = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--no-litellm", "--output", str(output)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for scenario in ("chat c=1", "chat c=16", "chat c=64", "stream 20 chunks c=1", "stream 1000 chunks c=1"):
        assert f"| {scenario} |" in done.stdout
    assert "CPU time in the web processes" in done.stdout
    for surface, upstream in (("chat", "openai (as is)"), ("responses", "openai (translated)"),
                              ("messages", "openai (translated)"), ("chat", "anthropic (translated)"),
                              ("messages", "anthropic (native)")):  # each surface's CPU beside chat's
        assert f"| {surface} | {upstream} | " in done.stdout
    for surface, upstream in (("chat", "openai"), ("responses", "openai"), ("messages", "openai"),
                              ("messages", "anthropic")):  # each surface's latency at concurrency 1 and 64
        for concurrency in (1, 64):
            assert f"| {surface} | {upstream} | {concurrency} | " in done.stdout
    assert not output.exists()  # a smoke run never rewrites the published results
