"""A small asyncio load generator: keep-alive HTTP/1.1 over raw sockets, so that on a
2-core machine it takes as little CPU as possible from what it measures.

Each connection sends requests back to back; latency is measured per request (to the last
byte) and, for streams, to the first body byte (time to first token)."""

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict = field(default_factory=dict)
    elapsed: float = 0.0

    def percentile(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def build_request(host: str, port: int, path: str, body: bytes, headers: dict) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader, started: float, result: Result):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    result.statuses[status] = result.statuses.get(status, 0) + 1
    # Match header names at the start of a line: LiteLLM also sends the upstream's headers
    # as "llm_provider-transfer-encoding" and "llm_provider-content-length".
    lower = head.lower()
    if b"\r\ntransfer-encoding: chunked" in lower:
        first = None
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if first is None:
                first = time.perf_counter() - started
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            await reader.readexactly(size + 2)
        result.first_bytes.append(first)
    else:
        start = lower.index(b"\r\ncontent-length:") + 17
        length = int(lower[start:lower.index(b"\r\n", start)])
        await reader.readexactly(length)
    return status


async def _connection(host, port, request: bytes, deadline: float, max_requests: int | None, result: Result):
    reader, writer = await asyncio.open_connection(host, port)
    sent = 0
    try:
        while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
            started = time.perf_counter()
            writer.write(request)
            sent += 1
            try:
                status = await _read_response(reader, started, result)
            except (asyncio.IncompleteReadError, ConnectionError):
                result.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            if status == 200:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.errors += 1
    finally:
        writer.close()


async def run(host: str, port: int, path: str, body: bytes, headers: dict, concurrency: int,
              seconds: float, max_requests_per_connection: int | None = None) -> Result:
    result = Result()
    request = build_request(host, port, path, body, headers)
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(_connection(host, port, request, deadline, max_requests_per_connection, result)
                           for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result


async def hold_streams(host: str, port: int, path: str, body: bytes, headers: dict, count: int) -> int:
    """Open `count` slow streams at once and read their first bytes; returns how many got
    a 200 and a first chunk. The streams stay open until the caller cancels."""
    request = build_request(host, port, path, body, headers)
    opened = 0

    async def one():
        nonlocal opened
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if head[9:12] == b"200":
            await reader.readuntil(b"\r\n")
            opened += 1
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    return tasks, lambda: opened


async def run_each(host: str, port: int, requests: list[bytes], concurrency: int) -> Result:
    """Send each of `requests` once (e.g. each with another key), over `concurrency`
    keep-alive connections taking the next one in turn."""
    result = Result()
    pending = iter(requests)
    began = time.perf_counter()

    async def connection():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in pending:
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader, started, result)
                if status == 200:
                    result.latencies.append(time.perf_counter() - started)
                else:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - began
    return result
