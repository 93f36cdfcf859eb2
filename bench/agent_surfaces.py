"""The agent-era surfaces in the benchmark: `/v1/responses` and `/v1/messages` beside chat,
each to the same mock upstream with the same prompt and cap, so each costs what its parsing
and encoding add to chat's. To the OpenAI-protocol upstream both are translated; to the
Anthropic-protocol one (bench/fast_upstream.py answers /messages in Anthropic's format)
`/v1/messages` is relayed natively and chat is translated. The mock's bench_* body fields
do not survive translation, so every stream here is its default 20 chunks."""

import json

# A second provider for the benchmark catalog (bench/run.py), on the same mock upstream.
CATALOG = """  benchanthropic:
    protocol: anthropic
    base_url: {base_url}
    api_key_env: BENCH_UPSTREAM_KEY
    models:
      chat: {{input_per_mtok: "0.27", output_per_mtok: "1.10", max_output_tokens: 4096}}
"""
UPSTREAMS = {"openai": "bench:chat", "anthropic": "benchanthropic:chat"}


def _bodies(model: str, cap: int) -> dict:
    return {
        "chat": ("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "Say hello"}],
                                          "max_tokens": cap}),
        # store: false, as Codex sends it; a stored response adds a database write.
        "responses": ("/v1/responses", {"model": model, "input": "Say hello", "max_output_tokens": cap,
                                        "store": False}),
        "messages": ("/v1/messages", {"model": model, "max_tokens": cap,
                                      "messages": [{"role": "user", "content": "Say hello"}]}),
    }


# (upstream protocol, surface): chat first in each group, as the baseline.
SCENARIOS = [("openai", "chat"), ("openai", "responses"), ("openai", "messages"),
             ("anthropic", "chat"), ("anthropic", "messages")]


def body(surface: str, stream: bool, upstream: str = "openai") -> tuple[str, bytes]:
    # The mock reports a token per chunk: a stream's cap covers its 20, or every stream
    # would be an overrun of its reservation (and log a warning), as in bench/run.py.
    path, fields = _bodies(UPSTREAMS[upstream], 20 if stream else 16)[surface]
    return path, json.dumps({**fields, "stream": True} if stream else fields).encode()


def cpu_per_request(cpu_of, warm, rounds: int) -> dict:
    """{(upstream, surface, streamed): web CPU ms per request}, the median of `rounds`
    measurements taken in turn (the shared machine's load drifts over a run, so each
    surface is measured right after chat, round after round). cpu_of(path, body, name)
    measures one scenario and names it in any failure; warm(path, body) sends a few first."""
    samples: dict = {}
    for (upstream, surface) in SCENARIOS:
        for stream in (False, True):
            warm(*body(surface, stream, upstream))  # first-call imports stay out of the measurement
    for _ in range(rounds):
        for stream in (False, True):
            for (upstream, surface) in SCENARIOS:
                name = f"{surface} to {upstream}{' stream' if stream else ''}"
                samples.setdefault((upstream, surface, stream), []).append(
                    cpu_of(*body(surface, stream, upstream), name))
    return {scenario: sorted(values)[len(values) // 2] for scenario, values in samples.items()}


def report(cpu: dict) -> list[str]:
    """The table: each surface's CPU per request and its ratio to chat's, same upstream."""
    lines = ["", "| surface | upstream protocol | CPU ms per request | vs chat | CPU ms per 20-chunk stream | "
             "vs chat stream |", "|---|---|---|---|---|---|"]
    for upstream, surface in SCENARIOS:
        plain, streamed = cpu[(upstream, surface, False)], cpu[(upstream, surface, True)]
        base, base_stream = cpu[(upstream, "chat", False)], cpu[(upstream, "chat", True)]
        how = "native" if (upstream, surface) == ("anthropic", "messages") else (
            "as is" if (upstream, surface) == ("openai", "chat") else "translated")
        lines.append(f"| {surface} | {upstream} ({how}) | {plain:.2f} | {plain / base if base else 0:.2f}x | "
                     f"{streamed:.2f} | {streamed / base_stream if base_stream else 0:.2f}x |")
    return lines + [""]


# Issue 16's per-request cost on every surface, billing on: latency at concurrency 1 and 64.
LATENCY_SCENARIOS = [("openai", "chat"), ("openai", "responses"), ("openai", "messages"), ("anthropic", "messages")]
CONCURRENCIES = (1, 64)
DIRECT_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def latency_per_surface(through, direct) -> dict:
    """{(upstream, surface, concurrency): (direct Result, gateway Result)} for non-streamed
    requests. through(path, body, concurrency) measures the gateway; direct(path, body,
    concurrency) the mock upstream answering its own protocol's request, the baseline
    every surface to that upstream is compared with (the same answer, nothing in between)."""
    rows = {}
    for concurrency in CONCURRENCIES:
        baselines = {}
        for upstream, surface in LATENCY_SCENARIOS:
            if upstream not in baselines:
                native = "chat" if upstream == "openai" else "messages"
                baselines[upstream] = direct(DIRECT_PATHS[upstream], body(native, False, upstream)[1], concurrency)
            rows[(upstream, surface, concurrency)] = (baselines[upstream],
                                                      through(*body(surface, False, upstream), concurrency))
    return rows


def latency_report(rows: dict) -> list[str]:
    ms = 1000

    def p(r, q):
        return r.percentile(r.latencies, q) * ms if r.latencies else 0.0

    lines = ["", "| surface, non-streamed | upstream protocol | concurrency | gateway p50 / p99 ms | "
             "added p50 / p99 ms | gateway rps | direct rps |", "|---|---|---|---|---|---|---|"]
    for (upstream, surface, concurrency), (d, g) in rows.items():
        lines.append(f"| {surface} | {upstream} | {concurrency} | {p(g, 50):.2f} / {p(g, 99):.2f} | "
                     f"{p(g, 50) - p(d, 50):.2f} / {p(g, 99) - p(d, 99):.2f} | {g.rps:.0f} | {d.rps:.0f} |")
    return lines + [""]
