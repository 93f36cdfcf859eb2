"""The agent-era surfaces in the benchmark: `/v1/responses` and `/v1/messages`, translated
to the same OpenAI-protocol mock upstream as chat, with the same prompt and cap, so each
costs what its parsing and encoding add to chat. The mock's bench_* body fields do not
survive translation, so streams are its default 20 chunks, as chat's measured stream."""

import json

SURFACES = {
    # store: false, as Codex sends it; a stored response adds a database write.
    "responses": ("/v1/responses", {"model": "bench:chat", "input": "Say hello", "max_output_tokens": 16,
                                    "store": False}),
    "messages": ("/v1/messages", {"model": "bench:chat", "max_tokens": 16,
                                  "messages": [{"role": "user", "content": "Say hello"}]}),
}


def body(name: str, stream: bool) -> tuple[str, bytes]:
    path, fields = SURFACES[name]
    return path, json.dumps({**fields, "stream": True} if stream else fields).encode()


def cpu_per_request(cpu_of, warm, chat: bytes, chat_stream: bytes) -> dict:
    """{(surface, streamed): web CPU ms per request}. Each surface is measured right after
    chat (the shared machine's load drifts over a run), non-streamed first, then streamed.
    cpu_of(body, path=, name=) measures one scenario; warm(path, body) sends a few first."""
    cpu = {}
    for stream in (False, True):
        cpu[("chat", stream)] = cpu_of(chat_stream if stream else chat)
        for name in SURFACES:
            path, data = body(name, stream)
            warm(path, data)  # first-call imports and caches stay out of the measurement
            cpu[(name, stream)] = cpu_of(data, path=path, name=f"{name}{' stream' if stream else ''}")
    return cpu


def report(cpu: dict) -> list[str]:
    """The table: each surface's CPU per request and its ratio to chat's."""
    lines = ["", "| surface (to an OpenAI-protocol upstream) | CPU ms per request | vs chat | "
             "CPU ms per 20-chunk stream | vs chat stream |", "|---|---|---|---|---|"]
    for name in ("chat", *SURFACES):
        plain, streamed = cpu[(name, False)], cpu[(name, True)]
        ratio = plain / cpu[("chat", False)] if cpu[("chat", False)] else 0
        ratio_stream = streamed / cpu[("chat", True)] if cpu[("chat", True)] else 0
        lines.append(f"| {name} | {plain:.2f} | {ratio:.2f}x | {streamed:.2f} | {ratio_stream:.2f}x |")
    return lines + [""]
