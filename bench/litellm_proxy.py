"""LiteLLM's proxy, run by bench/run.py next to MixGateway against the same mock upstream.

LiteLLM lives in its own virtualenv, so that it does not share packages with the gateway:

    python3 -m venv ../litellm-venv && ../litellm-venv/bin/pip install 'litellm[proxy]'

BENCH_LITELLM points at that virtualenv or at its `litellm` executable. The default is a
`litellm-venv` directory next to this checkout. Without one, the benchmark runs without
LiteLLM.

The proxy runs as installed: uvicorn with the same number of worker processes as the
gateway, a master key and no database (so no spend tracking or budgets). Telemetry is
off, and the model cost map is the one bundled with the package: startup makes no calls
to the internet. Its output goes to var/bench-litellm.log, and per-request logs are off.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-litellm-bench"
UPSTREAM_KEY = "sk-bench-upstream"
# The uvicorn loggers: the startup lines stay (so we know when every worker serves), access logs go.
LOG_CONFIG = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
                "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
}
# Inherited from the caller: nothing else, so that DATABASE_URL, REDIS_URL or OPENAI_* set for
# the gateway cannot switch on LiteLLM's database, cache or another upstream.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")


def find() -> tuple[Path | None, str]:
    """The `litellm` executable, or None and why not."""
    configured = os.environ.get("BENCH_LITELLM")
    path = Path(configured) if configured else ROOT.parent / "litellm-venv"
    if path.is_dir():
        path = path / "bin" / "litellm"
    if not os.access(path, os.X_OK):
        where = f"BENCH_LITELLM={configured}" if configured else f"{ROOT.parent / 'litellm-venv'}"
        return None, f"not installed ({where} has no litellm executable; see docs/performance.md)"
    return path, ""


def version(executable: Path) -> str:
    python = executable.parent / "python"
    done = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


@dataclass
class LiteLLM:
    port: int
    key: str
    process: subprocess.Popen
    version: str
    workers: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session, started below
            self.process.wait()


def _answers(port: int, timeout: float = 2) -> bool:
    body = json.dumps({"model": "bench:chat", "messages": [{"role": "user", "content": "Say hello"}],
                       "max_tokens": 16}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status == 200 and b"chat.completion" in response.read()


def start(upstream: str, port: int, workers: int | None = None, timeout: float = 240) -> LiteLLM | None:
    """Start LiteLLM's proxy on `port` with model `bench:chat` served by the OpenAI-protocol
    `upstream` (a base URL ending in /v1); None, with a line printed, when it cannot run."""
    executable, reason = find()
    if executable is None:
        print(f"LiteLLM: {reason}; running without it.", flush=True)
        return None
    workers = workers or int(os.environ.get("WEB_CONCURRENCY", "2"))
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    config, log_config, log = var / "bench-litellm.yaml", var / "bench-litellm-logging.json", var / "bench-litellm.log"
    config.write_text(json.dumps({  # JSON is YAML
        "model_list": [{"model_name": "bench:chat", "litellm_params": {
            "model": "openai/chat", "api_base": upstream, "api_key": UPSTREAM_KEY}}],
        "general_settings": {"master_key": KEY},
    }, indent=2) + "\n")
    log_config.write_text(json.dumps(LOG_CONFIG, indent=2) + "\n")
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env.update({
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map from GitHub
        "LITELLM_TELEMETRY_DISABLED": "true",
        "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
        "LITELLM_LOG": "ERROR",
        "HF_HUB_OFFLINE": "1",
        # uvicorn kills a worker that does not answer its supervisor's ping within 5 s;
        # importing LiteLLM on a busy 2-core machine can take longer.
        "TIMEOUT_WORKER_HEALTHCHECK": "120",
        "GRACEFUL_SHUTDOWN_TIMEOUT": "5",
    })
    with log.open("w") as out:
        process = subprocess.Popen(
            [executable, "--config", config, "--host", "127.0.0.1", "--port", str(port),
             "--num_workers", str(workers), "--log_config", log_config],
            cwd=var, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proxy = LiteLLM(port, KEY, process, version(executable), workers, log)
    deadline = time.monotonic() + timeout
    # Ready when every worker has started (each logs it) and a request goes through to the upstream.
    while time.monotonic() < deadline and process.poll() is None:
        if log.read_text(errors="replace").count("Application startup complete") >= workers:
            try:
                if _answers(port):
                    return proxy
            except OSError:
                pass
        time.sleep(0.5)
    why = "exited" if process.poll() is not None else f"did not answer within {timeout:.0f} s"
    proxy.stop()
    print(f"LiteLLM: {executable} {why} (see {log}); running without it.", file=sys.stderr, flush=True)
    return None


if __name__ == "__main__":  # a manual check: python bench/litellm_proxy.py UPSTREAM_BASE_URL PORT
    running = start(sys.argv[1], int(sys.argv[2]))
    if running:
        print(f"LiteLLM {running.version} on port {running.port}, pid {running.process.pid}; Ctrl-C stops it")
        try:
            running.process.wait()
        except KeyboardInterrupt:
            running.stop()
