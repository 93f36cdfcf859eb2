"""MixGateway's benchmark: the gateway in production shape against the same requests sent
straight to a mock upstream, in one run, on this machine.

    make bench            # or: .venv/bin/python bench/run.py [--seconds 5] [--smoke]

Starts a fast mock upstream, the Procfile's web (gunicorn), worker and beat processes with
PostgreSQL and Redis (DATABASE_URL / REDIS_URL, defaults: local servers), then measures and
writes docs/performance.md. Compare ratios, not absolute numbers: the machine is shared.
When LiteLLM's proxy is installed in its own virtualenv (see bench/litellm_proxy.py), the
same load also runs through it, in the same run.
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
import agent_surfaces  # noqa: E402
import litellm_proxy  # noqa: E402
import loadgen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
CHAT = json.dumps({"model": "bench:chat", "messages": [{"role": "user", "content": "Say hello"}],
                   "max_tokens": 16}).encode()


def stream_body(chunks: int, delay_ms: int = 0) -> bytes:
    # The mock upstream reports one completion token per chunk: a cap below that would have
    # every stream counted (and logged) as an overrun of its reservation.
    return json.dumps({"model": "bench:chat", "messages": [{"role": "user", "content": "Say hello"}],
                       "max_tokens": max(16, chunks), "stream": True, "bench_chunks": chunks,
                       "bench_delay_ms": delay_ms}).encode()


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


def worker_class() -> str:
    """The web line's gunicorn worker class (--worker-class X, --worker-class=X or -k X)."""
    args = shlex.split(procfile().get("web", ""))
    for i, arg in enumerate(args):
        if arg.startswith("--worker-class="):
            return arg.split("=", 1)[1]
        if arg in ("--worker-class", "-k") and i + 1 < len(args):
            return args[i + 1]
    return "sync"


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
        self.litellm: litellm_proxy.LiteLLM | None = None
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
        # A fresh database every run: one left by another checkout may hold migrations this
        # one does not have, and a benchmark's data is disposable.
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        # ...and so its live state in Redis goes too: organization ids start again at 1.
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"])
        for prefix in (self.env["BILLING_REDIS_PREFIX"], self.env["CACHE_KEY_PREFIX"]):
            for stale in client.scan_iter(f"{prefix}*", count=1000):
                client.delete(stale)
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
""" + agent_surfaces.CATALOG.format(base_url=f"http://{HOST}:{self.upstream_port}/v1"))
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

    def start_litellm(self):
        self.litellm = litellm_proxy.start(f"http://{HOST}:{self.upstream_port}/v1", free_port(),
                                           int(self.env["WEB_CONCURRENCY"]))

    def web_pids(self) -> list[int]:
        return tree_pids(self.procs["web"].pid)

    def stop(self):
        if self.litellm:
            self.litellm.stop()
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
    lt = stack.litellm
    litellm = {"Authorization": f"Bearer {lt.key}"} if lt else {}
    rows = {}

    async def both(name, body, concurrency, extra=None, secs=seconds):
        extra = extra or {}
        direct = await loadgen.run(HOST, up, "/v1/chat/completions", body, {**upstream, **extra}, concurrency, secs)
        through = await loadgen.run(HOST, gw, "/v1/chat/completions", body, {**gateway, **extra}, concurrency, secs)
        other = None
        if lt:
            other = await loadgen.run(HOST, lt.port, "/v1/chat/completions", body, {**litellm, **extra},
                                      concurrency, secs)
        rows[name] = (direct, through, other)

    async def scenarios():
        # Warm both paths (connections, caches, the account's live state).
        await loadgen.run(HOST, gw, "/v1/chat/completions", CHAT, gateway, 4, 1.0)
        if lt:  # LiteLLM imports its streaming code on the first stream.
            await loadgen.run(HOST, lt.port, "/v1/chat/completions", CHAT, litellm, 4, 1.0)
            await loadgen.run(HOST, lt.port, "/v1/chat/completions", stream_body(20), litellm, 4, 0.5)
        for c in (1, 16, 64):
            await both(f"chat c={c}", CHAT, c)
        await both("stream 20 chunks c=1", stream_body(20), 1)
        await both("stream 1000 chunks c=1", stream_body(1000), 1, secs=max(2.0, seconds / 2))

    asyncio.run(scenarios())

    # CPU per request and per 20-chunk stream, from the processes' own counters.
    # Enough requests that the kernel's 10 ms CPU ticks blur the result by well under 1%.
    failed = {}

    async def cpu_of(body, port, headers, pids_of, count=2000 if not stack.smoke else 40,
                     path="/v1/chat/completions", name=None):
        pids = pids_of()
        before = cpu_seconds(pids)
        result = await loadgen.run(HOST, port, path, body, headers, 8, 600,
                                   max_requests_per_connection=count // 8)
        if name and (result.errors or set(result.statuses) != {200}):
            failed[name] = (result.errors, result.statuses)
        return (cpu_seconds(pids) - before) / max(len(result.latencies), 1) * 1000

    # Each surface's CPU per request beside chat's (bench/agent_surfaces.py).
    surfaces = agent_surfaces.cpu_per_request(
        lambda path, body, name: asyncio.run(cpu_of(body, gw, gateway, stack.web_pids, path=path, name=name)),
        lambda path, body: stack.smoke or asyncio.run(loadgen.run(HOST, gw, path, body, gateway, 2, 0.3)),
        rounds=1 if stack.smoke else 3)
    cpu_chat, cpu_stream = surfaces[("openai", "chat", False)], surfaces[("openai", "chat", True)]
    # Each surface's latency at concurrency 1 and 64 (issue 16), against the mock answering directly.
    latencies = agent_surfaces.latency_per_surface(
        lambda path, body, c: asyncio.run(loadgen.run(HOST, gw, path, body, gateway, c, seconds)),
        lambda path, body, c: asyncio.run(loadgen.run(HOST, up, path, body, upstream, c, seconds)))
    for (upstream_protocol, surface, c), (_, through) in latencies.items():
        if through.errors or set(through.statuses) - {200}:
            failed[f"{surface} to {upstream_protocol} c={c}"] = (through.errors, through.statuses)
    other = None
    if lt:
        lt_pids = lambda: tree_pids(lt.process.pid)  # noqa: E731
        lt_count = 400 if not stack.smoke else 40  # LiteLLM is ten times slower: fewer, same precision
        other = {"cpu_chat_ms": asyncio.run(cpu_of(CHAT, lt.port, litellm, lt_pids, lt_count)),
                 "cpu_stream_ms": asyncio.run(cpu_of(stream_body(20), lt.port, litellm, lt_pids, lt_count)),
                 "rss": rss_mib(lt_pids()), "processes": len(lt_pids()), "version": lt.version,
                 "workers": lt.workers}

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
            "streams": (streams, held, base_rss, peak_rss), "litellm": other, "surfaces": surfaces, "latencies": latencies,
            "surface_failures": failed}


def report(m: dict, seconds: float) -> str:
    ms = 1000
    lt = m["litellm"]

    def p50_99(r):
        return r.percentile(r.latencies, 50) * ms, r.percentile(r.latencies, 99) * ms

    head = ["scenario", "direct p50 / p99 ms", "gateway p50 / p99 ms", "added p50 / p99 ms", "direct rps",
            "gateway rps", "rps ratio"]
    if lt:
        head[4:4] = ["LiteLLM p50 / p99 ms", "LiteLLM added p50 / p99 ms"]
        head += ["LiteLLM rps", "gateway / LiteLLM rps"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, (d, g, o) in m["rows"].items():
        (dp50, dp99), (gp50, gp99) = p50_99(d), p50_99(g)
        cells = [name, f"{dp50:.2f} / {dp99:.2f}", f"{gp50:.2f} / {gp99:.2f}", f"{gp50 - dp50:.2f} / {gp99 - dp99:.2f}",
                 f"{d.rps:.0f}", f"{g.rps:.0f}", f"{g.rps / d.rps if d.rps else 0:.2f}"]
        if o:
            op50, op99 = p50_99(o)
            cells[4:4] = [f"{op50:.2f} / {op99:.2f}", f"{op50 - dp50:.2f} / {op99 - dp99:.2f}"]
            cells += [f"{o.rps:.0f}", f"{g.rps / o.rps if o.rps else 0:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    d, g, o = m["rows"]["stream 20 chunks c=1"]
    ttft = (g.percentile(g.first_bytes, 50) - d.percentile(d.first_bytes, 50)) * ms
    ttft_lt = (o.percentile(o.first_bytes, 50) - d.percentile(d.first_bytes, 50)) * ms if o else 0
    ttft_lt = f"; through LiteLLM, added {ttft_lt:.2f} ms" if o else ""
    d_long, g_long, o_long = m["rows"]["stream 1000 chunks c=1"]
    chunks_direct = 1000 * d_long.rps
    chunks_gateway = 1000 * g_long.rps
    chunks_lt = f", {1000 * o_long.rps:,.0f} through LiteLLM" if o_long else ""
    count, held, base_rss, peak_rss = m["streams"]
    errors = {name: tuple(r.errors for r in row if r) for name, row in m["rows"].items()}
    lines += [
        "",
        f"- Time to first token, 20-chunk stream at concurrency 1: added {ttft:.2f} ms (p50){ttft_lt}.",
        f"- Long streams (1000 chunks): {chunks_direct:,.0f} chunks/s direct, {chunks_gateway:,.0f} through the "
        f"gateway (ratio {chunks_gateway / chunks_direct if chunks_direct else 0:.2f}){chunks_lt}.",
        f"- CPU time in the web processes: {m['cpu_chat_ms']:.2f} ms per non-streamed request, "
        f"{m['cpu_stream_ms']:.2f} ms per 20-chunk stream (billing on: reservation, settlement, usage event).",
    ]
    if lt:
        lines.append(
            f"- LiteLLM {lt['version']} (uvicorn, {lt['workers']} workers, master key, no database: no spend "
            f"tracking): {lt['cpu_chat_ms']:.2f} ms CPU per non-streamed request, {lt['cpu_stream_ms']:.2f} ms "
            f"per 20-chunk stream; RSS {lt['rss']:.0f} MiB idle in {lt['processes']} processes (gateway web processes: "
            f"{base_rss:.0f} MiB).")
    else:
        lines.append("- LiteLLM's proxy was not part of this run (not installed, or --no-litellm).")
    lines += agent_surfaces.report(m["surfaces"])
    lines += agent_surfaces.latency_report(m["latencies"])
    lines += [
        f"- {count} slow streams opened at once: {held} received their first chunk within 10 s; web processes' RSS "
        f"{base_rss:.0f} MiB before, {peak_rss:.0f} MiB while holding them.",
        f"- Errors (direct, gateway{', LiteLLM' if lt else ''}) per scenario: {errors}. "
        f"Each scenario ran {seconds:g} s.",
    ]
    return "\n".join(lines)


def gateway_problems(m: dict) -> list[str]:
    """What went wrong through the gateway: any error, a scenario with no answer, a slow
    stream that never started. A benchmark of a failing gateway measures nothing."""
    problems = [f"{name}: {row[1].errors} errors, statuses {row[1].statuses}" for name, row in m["rows"].items()
                if row[1].errors or not row[1].latencies]
    problems += [f"{name}: {errors} errors, statuses {statuses}"
                 for name, (errors, statuses) in m["surface_failures"].items()]
    count, held, _, _ = m["streams"]
    if held < count:
        problems.append(f"{count - held} of {count} slow streams got no first chunk")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario and path")
    parser.add_argument("--smoke", action="store_true", help="a few requests: keeps the benchmark working")
    parser.add_argument("--output", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM's proxy out even when installed")
    args = parser.parse_args()
    seconds = 0.5 if args.smoke else args.seconds
    stack = Stack(args.smoke)
    key = stack.prepare()
    stack.start()
    try:
        if not args.no_litellm:
            stack.start_litellm()
        measured = measure(stack, key, seconds)
    finally:
        stack.stop()
    table = report(measured, seconds)
    print(table)
    problems = gateway_problems(measured)
    if problems:
        sys.exit("The gateway did not serve the benchmark cleanly: " + "; ".join(problems))
    if not args.smoke:
        versions = subprocess.run([PY, "-m", "pip", "freeze"], capture_output=True, text=True).stdout
        pick = [line for line in versions.splitlines() if line.lower().split("==")[0] in
                ("django", "djangorestframework", "gunicorn", "gevent", "celery", "redis", "hiredis", "psycopg",
                 "orjson")]
        if stack.litellm:
            pick.append(f"litellm=={stack.litellm.version} (own virtualenv)")
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        litellm = (f", LiteLLM's proxy (uvicorn, {stack.litellm.workers} workers, no database)" if stack.litellm
                   else "")
        text = (ROOT / "docs" / "performance.md").read_text() if Path(args.output).exists() else ""
        head = text.split("<!-- results -->")[0] if "<!-- results -->" in text else "# Performance\n\n"
        Path(args.output).write_text(
            head + "<!-- results -->\n"
            f"## Latest run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Machine: {machine}. Processes: the Procfile's web (gunicorn {worker_class()}, WEB_CONCURRENCY="
            f"{stack.env['WEB_CONCURRENCY']}), worker and beat, PostgreSQL, Redis{litellm}; the mock upstream and "
            f"the load generator share the same 2 cores. Versions: {', '.join(pick)}.\n\n{table}\n"
        )


if __name__ == "__main__":
    main()
