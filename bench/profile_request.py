"""Where a gateway request's CPU goes: N requests in process under cProfile.

    .venv/bin/python bench/profile_request.py [N]   (after `make bench` has prepared its database)

Uses the benchmark's PostgreSQL database and Redis and starts the fast mock upstream."""

import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import run as bench  # noqa: E402

stack = bench.Stack(smoke=True)
os.environ.update(stack.env, DJANGO_SETTINGS_MODULE="console.settings", ALLOWED_HOSTS="testserver")
key = stack.prepare()
upstream = subprocess.Popen([sys.executable, "bench/fast_upstream.py", str(stack.upstream_port)], cwd=ROOT)
bench.wait_port(stack.upstream_port)

import django  # noqa: E402

django.setup()
from django.test import Client  # noqa: E402

client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
try:
    for _ in range(20):
        client.post("/v1/chat/completions", bench.CHAT, content_type="application/json")
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    for _ in range(count):
        assert client.post("/v1/chat/completions", bench.CHAT, content_type="application/json").status_code == 200
    profiler.disable()
    print(f"CPU per request in process: {(time.process_time() - started) / count * 1000:.2f} ms (with profiler)")
    pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(int(os.environ.get("PROFILE_LINES", "35")))
finally:
    upstream.terminate()
