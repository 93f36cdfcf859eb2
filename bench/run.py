"""MixGateway's benchmark: the gateway in production shape against the same requests sent
straight to a mock upstream, in one run, on this machine.

    make bench            # or: .venv/bin/python bench/run.py [--seconds 5] [--smoke]

Starts a fast mock upstream, the Procfile's web (gunicorn), worker and beat processes with
PostgreSQL and Redis (DATABASE_URL / REDIS_URL, defaults: local servers), then measures and
writes docs/performance.md. Compare ratios, not absolute numbers: the machine is shared.
"""

import argparse
import asyncio
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
CHAT = json.dumps({"model": "bench:chat", "messages": [{"role": "user", "content": "Say hello"}],
                   "max_tokens": 16}).encode()


def stream_body(chunks: int, delay_ms: int = 0) -> bytes:
    return json.dumps({"model": "bench:chat", "messages": [{"role": "user", "content": "Say hello"}],
                       "max_tokens": 16, "stream": True, "bench_chunks": chunks, "bench_delay_ms": delay_ms}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def tree_pids(root: int) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
        frontier.extend(int(c) for c in children)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / ticks


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Stack:
    """The processes under test, started and stopped together."""

    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.procs: dict[str, subprocess.Popen] = {}
        self.upstream_port = free_port()
        self.gateway_port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mixgateway_bench"),
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
            "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "BILLING_REDIS_PREFIX": "mgbench", "CACHE_KEY_PREFIX": "mgbenchcache",
            "ALLOWED_HOSTS": HOST, "LOG_LEVEL": "WARNING", "PORT": str(self.gateway_port),
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
            "BENCH_UPSTREAM_KEY": "sk-bench-upstream",
        }

    def manage(self, *args) -> str:
        return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def prepare(self) -> str:
        import psycopg

        url = self.env["DATABASE_URL"]
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        self.manage("migrate", "--noinput")
        catalog = ROOT / "var" / "bench-catalog.yaml"
        catalog.parent.mkdir(exist_ok=True)
        catalog.write_text(f"""providers:
  bench:
    protocol: openai
    base_url: http://{HOST}:{self.upstream_port}/v1
    api_key_env: BENCH_UPSTREAM_KEY
    models:
      chat: {{input_per_mtok: "0.27", output_per_mtok: "1.10", max_output_tokens: 4096}}
""")
        self.manage("load_catalog", str(catalog))
        slug = f"bench-{int(time.time())}"
        slug = self.manage("create_tenant", slug, "--owner", "bench@example.com")
        self.manage("credit", "--tenant", slug, "1000000")
        return self.manage("create_api_key", "--tenant", slug, "--name", "bench")

    def start(self):
        self.procs["upstream"] = subprocess.Popen([PY, "bench/fast_upstream.py", str(self.upstream_port)], cwd=ROOT)
        processes = procfile()
        for name in ("web", "worker", "beat"):
            command = processes[name].replace("gunicorn ", f"{PY} -m gunicorn ", 1).replace(
                "celery ", f"{PY} -m celery ", 1)
            self.procs[name] = subprocess.Popen(["bash", "-c", "exec " + command], cwd=ROOT, env=self.env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.upstream_port)
        wait_port(self.gateway_port)

    def web_pids(self) -> list[int]:
        return tree_pids(self.procs["web"].pid)

    def stop(self):
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(stack: Stack, key: str, seconds: float) -> dict:
    gateway = {"Authorization": f"Bearer {key}"}
    upstream = {"Authorization": "Bearer sk-bench-upstream"}
    up, gw = stack.upstream_port, stack.gateway_port
    rows = {}

    async def both(name, body, concurrency, extra=None, secs=seconds):
        extra = extra or {}
        direct = await loadgen.run(HOST, up, "/v1/chat/completions", body, {**upstream, **extra}, concurrency, secs)
        through = await loadgen.run(HOST, gw, "/v1/chat/completions", body, {**gateway, **extra}, concurrency, secs)
        rows[name] = (direct, through)

    async def scenarios():
        # Warm both paths (connections, caches, the account's live state).
        await loadgen.run(HOST, gw, "/v1/chat/completions", CHAT, gateway, 4, 1.0)
        for c in (1, 16, 64):
            await both(f"chat c={c}", CHAT, c)
        await both("stream 20 chunks c=1", stream_body(20), 1)
        await both("stream 1000 chunks c=1", stream_body(1000), 1, secs=max(2.0, seconds / 2))

    asyncio.run(scenarios())

    # CPU per request and per 20-chunk stream, from the web processes' own counters.
    async def cpu_of(body, extra, count=200 if not stack.smoke else 20):
        pids = stack.web_pids()
        before = cpu_seconds(pids)
        result = await loadgen.run(HOST, gw, "/v1/chat/completions", body, {**gateway, **extra}, 8, 600,
                                   max_requests_per_connection=count // 8)
        return (cpu_seconds(pids) - before) / max(len(result.latencies), 1) * 1000

    cpu_chat = asyncio.run(cpu_of(CHAT, {}))
    cpu_stream = asyncio.run(cpu_of(stream_body(20), {}))

    # Slow streams held open at once: how many get their first chunk, and the memory used.
    async def slow_streams(count):
        base_rss = rss_mib(stack.web_pids())
        tasks, opened = await loadgen.hold_streams(HOST, gw, "/v1/chat/completions", stream_body(600, 50),
                                                   gateway, count)
        deadline = time.monotonic() + (10 if not stack.smoke else 3)
        while opened() < count and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        held, rss = opened(), rss_mib(stack.web_pids())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return held, base_rss, rss

    streams = 1000 if not stack.smoke else 50
    held, base_rss, peak_rss = asyncio.run(slow_streams(streams))
    return {"rows": rows, "cpu_chat_ms": cpu_chat, "cpu_stream_ms": cpu_stream,
            "streams": (streams, held, base_rss, peak_rss)}


def report(m: dict, seconds: float) -> str:
    ms = 1000
    lines = ["| scenario | direct p50 / p99 ms | gateway p50 / p99 ms | added p50 / p99 ms | direct rps | gateway rps | rps ratio |",
             "|---|---|---|---|---|---|---|"]
    for name, (d, g) in m["rows"].items():
        dp50, dp99 = d.percentile(d.latencies, 50) * ms, d.percentile(d.latencies, 99) * ms
        gp50, gp99 = g.percentile(g.latencies, 50) * ms, g.percentile(g.latencies, 99) * ms
        lines.append(f"| {name} | {dp50:.2f} / {dp99:.2f} | {gp50:.2f} / {gp99:.2f} | {gp50 - dp50:.2f} / "
                     f"{gp99 - dp99:.2f} | {d.rps:.0f} | {g.rps:.0f} | {g.rps / d.rps if d.rps else 0:.2f} |")
    d, g = m["rows"]["stream 20 chunks c=1"]
    ttft = (g.percentile(g.first_bytes, 50) - d.percentile(d.first_bytes, 50)) * ms
    d_long, g_long = m["rows"]["stream 1000 chunks c=1"]
    chunks_direct = 1000 * d_long.rps
    chunks_gateway = 1000 * g_long.rps
    count, held, base_rss, peak_rss = m["streams"]
    errors = {name: (d.errors, g.errors) for name, (d, g) in m["rows"].items()}
    lines += [
        "",
        f"- Time to first token, 20-chunk stream at concurrency 1: added {ttft:.2f} ms (p50).",
        f"- Long streams (1000 chunks): {chunks_direct:,.0f} chunks/s direct, {chunks_gateway:,.0f} through the gateway "
        f"(ratio {chunks_gateway / chunks_direct if chunks_direct else 0:.2f}).",
        f"- CPU time in the web processes: {m['cpu_chat_ms']:.2f} ms per non-streamed request, "
        f"{m['cpu_stream_ms']:.2f} ms per 20-chunk stream (billing on: reservation, settlement, usage event).",
        f"- {count} slow streams opened at once: {held} received their first chunk within 10 s; web processes' RSS "
        f"{base_rss:.0f} MiB before, {peak_rss:.0f} MiB while holding them.",
        f"- Errors (direct, gateway) per scenario: {errors}. Each scenario ran {seconds:g} s.",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario and path")
    parser.add_argument("--smoke", action="store_true", help="a few requests: keeps the benchmark working")
    parser.add_argument("--output", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()
    seconds = 0.5 if args.smoke else args.seconds
    stack = Stack(args.smoke)
    key = stack.prepare()
    stack.start()
    try:
        measured = measure(stack, key, seconds)
    finally:
        stack.stop()
    table = report(measured, seconds)
    print(table)
    if not args.smoke:
        versions = subprocess.run([PY, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
        pick = [line for line in versions.splitlines() if line.lower().split("==")[0] in
                ("django", "djangorestframework", "gunicorn", "celery", "redis", "psycopg", "requests", "urllib3")]
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        text = (ROOT / "docs" / "performance.md").read_text() if Path(args.output).exists() else ""
        head = text.split("<!-- results -->")[0] if "<!-- results -->" in text else "# Performance\n\n"
        Path(args.output).write_text(
            head + "<!-- results -->\n"
            f"## Latest run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {machine}. Processes: the Procfile's web (gunicorn gthread, WEB_CONCURRENCY="
            f"{stack.env['WEB_CONCURRENCY']}), worker and beat, PostgreSQL, Redis; the mock upstream and the load "
            f"generator share the same 2 cores. Versions: {', '.join(pick)}.\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
