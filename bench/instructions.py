"""CPU per request as a count of machine instructions, which a loaded machine cannot blur.

    .venv/bin/python bench/instructions.py [--requests 100] [--stream] [--surface responses]
                                           [--upstream anthropic]

Wall-clock and CPU-time figures move by ±20% here with whatever else shares the 2 cores;
valgrind's callgrind counts the instructions one process executes, the same on every run of
the same code. The gateway (Django's WSGI handler in one process, PostgreSQL, Redis, the
benchmark's fast mock upstream in its own process) serves a warm-up, then `--requests`
requests, under callgrind twice: with the warm-up alone and with both. The difference,
divided by the request count, is the instructions one request costs, start-up and warm-up
cancelled out. It leaves out the web server (gunicorn, gevent), which `make bench` measures.

Run it in two checkouts to compare two versions of the request path; each uses its own
database (BENCH_DATABASE_URL) and Redis prefix, recreated at every run.
"""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 30


def inner(count: int, stream: bool, surface: str, upstream: str) -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.test import Client

    import agent_surfaces
    import run as bench

    if (surface, upstream) == ("chat", "openai"):
        path, body = "/v1/chat/completions", bench.stream_body(20) if stream else bench.CHAT
    else:  # the surfaces' benchmark bodies (a chat stream there is the same 20 chunks)
        path, body = agent_surfaces.body(surface, stream, upstream)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {os.environ['BENCH_KEY']}")
    for _ in range(WARM_UP + count):
        response = client.post(path, body, content_type="application/json")
        assert response.status_code == 200, response.status_code
        if stream:
            b"".join(response.streaming_content)
            response.close()


def measure(count: int, stream: bool, surface: str = "chat", upstream: str = "openai") -> int:
    """Instructions executed by a process serving WARM_UP + count requests."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--inner", str(count), "--surface", surface, "--upstream", upstream]
        + (["--stream"] if stream else []),
        cwd=ROOT, env=os.environ, capture_output=True, text=True)
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if out.returncode or not found:
        raise SystemExit(f"callgrind run failed:\n{out.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--stream", action="store_true", help="20-chunk streams instead of whole answers")
    parser.add_argument("--surface", choices=("chat", "responses", "messages"), default="chat",
                        help="the endpoint (bench/agent_surfaces.py's bodies)")
    parser.add_argument("--upstream", choices=("openai", "anthropic"), default="openai",
                        help="the mock upstream's protocol")
    parser.add_argument("--inner", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        return inner(args.inner, args.stream, args.surface, args.upstream)

    sys.path.insert(0, str(ROOT / "bench"))
    import run as bench

    stack = bench.Stack(smoke=True)
    stack.env["ALLOWED_HOSTS"] = "testserver"
    _recreate_database(stack.env["DATABASE_URL"])
    key = stack.prepare()
    os.environ.update(stack.env, BENCH_KEY=key, DJANGO_SETTINGS_MODULE="console.settings")
    upstream = subprocess.Popen([sys.executable, "bench/fast_upstream.py", str(stack.upstream_port)], cwd=ROOT)
    try:
        bench.wait_port(stack.upstream_port)
        base = measure(0, args.stream, args.surface, args.upstream)
        total = measure(args.requests, args.stream, args.surface, args.upstream)
    finally:
        upstream.terminate()
    kind = (f"{args.surface} {'20-chunk stream' if args.stream else 'non-streamed request'}"
            f" to the {args.upstream} mock")
    print(f"{(total - base) / args.requests / 1e6:.2f} million instructions per {kind} "
          f"({args.requests} requests; start-up and {WARM_UP} warm-up requests: {base / 1e6:.0f} million)")


def _recreate_database(url: str) -> None:
    """Older checkouts' bench does not drop its database; do it here for both."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
