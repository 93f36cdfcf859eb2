"""Where the web process's CPU goes under load: cProfile inside one gunicorn worker of the
Procfile's web command, while the load generator sends requests.

    .venv/bin/python bench/profile_server.py [KIND] [REQUESTS] [SORT] [LINES]

KIND: chat, stream (20 chunks), responses, responses-stream, messages, messages-stream, or
messages-anthropic / messages-anthropic-stream (relayed natively to the Anthropic-protocol
mock); the benchmark's bodies, bench/agent_surfaces.py.

Uses the benchmark's stack (bench/run.py: PostgreSQL, Redis, the fast mock upstream, one
web worker). Under gevent a greenlet switch makes cumulative times meaningless (waiting
shows up in whatever function yielded): read the `tottime` column."""

import asyncio
import glob
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_surfaces  # noqa: E402
import loadgen  # noqa: E402
import run  # noqa: E402

HOOKS = """
import cProfile, os
_profile = None

def post_worker_init(worker):
    global _profile
    _profile = cProfile.Profile()
    _profile.enable()

def worker_exit(server, worker):
    if _profile:
        _profile.disable()
        _profile.dump_stats(os.path.join({out!r}, f"worker-{{os.getpid()}}.prof"))
"""


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "chat"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    sort = sys.argv[3] if len(sys.argv) > 3 else "tottime"
    lines = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    out = tempfile.mkdtemp(prefix="mgprofile-")
    hooks = Path(out) / "hooks.py"
    hooks.write_text(HOOKS.format(out=out))
    stack = run.Stack(smoke=True)
    key = stack.prepare()
    procfile = run.procfile()
    run.procfile = lambda: {**procfile, "web": f"{procfile['web']} -c {hooks}"}  # noqa: E731
    stack.env["WEB_CONCURRENCY"] = "1"
    stack.start()
    surface = kind.removesuffix("-stream").removesuffix("-anthropic")
    if surface in ("responses", "messages"):
        path, body = agent_surfaces.body(surface, "-stream" in kind, "anthropic" if "-anthropic" in kind else "openai")
    else:
        path, body = "/v1/chat/completions", run.CHAT if kind == "chat" else run.stream_body(20)
    try:
        result = asyncio.run(loadgen.run(run.HOST, stack.gateway_port, path, body,
                                         {"Authorization": f"Bearer {key}"}, 4, 600,
                                         max_requests_per_connection=count // 4))
        print(f"{len(result.latencies)} {kind} requests, statuses {result.statuses}")
    finally:
        stack.stop()
    time.sleep(0.5)
    for path in glob.glob(os.path.join(out, "worker-*.prof")):
        pstats.Stats(path).sort_stats(sort).print_stats(lines)
        print(f"profile saved in {path}")


if __name__ == "__main__":
    main()
