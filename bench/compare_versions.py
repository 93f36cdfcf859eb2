"""Web CPU per request of two (or more) checkouts, measured in turns with all their stacks up
at once, so whatever else loads the shared machine weighs on each alike.

    .venv/bin/python bench/compare_versions.py [--rounds 4] NAME=CHECKOUT:DATABASE:REDIS_DB ...

e.g. `first=/work/wt/old:mg_bench_old:1 now=.:mg_bench_now:0` (a checkout of the first version
made with `git worktree add`, its .venv a symlink to this one's, so both run the same
libraries). Each checkout's own bench/run.py starts its stack (the Procfile's web, worker and
beat, the fast mock upstream) on its own PostgreSQL database (recreated) and Redis database
(REDIS server from BENCH_REDIS_SERVER, default redis://127.0.0.1:6379). Every round measures
each checkout once per kind: 2,000 non-streamed chat requests, 1,000 20-chunk streams, at
concurrency 8. Prints each round and the median; docs/performance.md, "The second version
against the first", has a run.
"""

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402


def _bench_of(name: str, checkout: str):
    """The checkout's own bench/run.py, as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"run_{name}", Path(checkout) / "bench" / "run.py")
    sys.path.insert(0, str(Path(checkout) / "bench"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path.pop(0)
    return module


def cpu_ms(bench, stack, key: str, body: bytes, count: int) -> float:
    pids = stack.web_pids()
    before = bench.cpu_seconds(pids)
    result = asyncio.run(loadgen.run(bench.HOST, stack.gateway_port, "/v1/chat/completions", body,
                                     {"Authorization": f"Bearer {key}"}, 8, 600, max_requests_per_connection=count // 8))
    if result.errors or set(result.statuses) != {200}:
        raise SystemExit(f"the gateway failed the benchmark: {result.errors} errors, statuses {result.statuses}")
    return (bench.cpu_seconds(pids) - before) / len(result.latencies) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("checkouts", nargs="+", help="NAME=CHECKOUT:DATABASE:REDIS_DB")
    args = parser.parse_args()
    redis_server = os.environ.get("BENCH_REDIS_SERVER", "redis://127.0.0.1:6379")
    stacks = {}
    try:
        for spec in args.checkouts:
            name, _, rest = spec.partition("=")
            checkout, database, redis_db = rest.split(":")
            os.environ["BENCH_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
            os.environ["BENCH_REDIS_URL"] = f"{redis_server}/{redis_db}"
            bench = _bench_of(name, str(Path(checkout).resolve()))
            stack = bench.Stack(smoke=True)
            key = stack.prepare()
            stack.start()
            stacks[name] = (bench, stack, key)
        kinds = {"chat": lambda b: (b.CHAT, 2000), "stream": lambda b: (b.stream_body(20), 1000)}
        for bench, stack, key in stacks.values():  # warm-up: connections, caches, first imports
            for make in kinds.values():
                body, _ = make(bench)
                cpu_ms(bench, stack, key, body, 200)
        samples = {(name, kind): [] for name in stacks for kind in kinds}
        for round_number in range(args.rounds):
            for kind, make in kinds.items():
                for name, (bench, stack, key) in stacks.items():
                    samples[(name, kind)].append(cpu_ms(bench, stack, key, *make(bench)))
            print(f"round {round_number + 1}, load {os.getloadavg()[0]:.1f}: " + ", ".join(
                f"{name} {kind} {values[-1]:.3f} ms" for (name, kind), values in samples.items()), flush=True)
        for (name, kind), values in samples.items():
            print(f"{name:>10} {kind:6} web CPU ms per request: median {statistics.median(values):.3f}, "
                  f"min {min(values):.3f}, runs {', '.join(f'{v:.3f}' for v in values)}")
    finally:
        for _, stack, _ in stacks.values():
            stack.stop()


if __name__ == "__main__":
    main()
