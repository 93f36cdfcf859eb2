"""A small HTTP/1.1 client for POSTing JSON to upstream providers, with keep-alive pools.

Written for the one exchange the gateway makes (a POST with a body in hand, an answer read
in full or relayed as it arrives), because a general client (urllib3 over http.client)
cost ten times the CPU of the exchange itself. Plain blocking sockets, so it runs the same
under threads and under gevent's patched sockets. No retries, redirects, cookies or
proxies: those are not the gateway's to want.
"""

import select
import socket
import ssl
import threading
import zlib
from collections import deque
from functools import lru_cache
from urllib.parse import urlsplit

import certifi

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_LINE_BYTES = 4096  # a chunk-size or trailer line
RECV_BYTES = 65536
USER_AGENT = "MixGateway"


class ConnectFailed(Exception):
    """The connection (or its TLS handshake) could not be made: refused, unreachable, unknown
    host, an untrusted certificate."""


class ConnectTimeout(ConnectFailed):
    pass


class ProtocolError(Exception):
    """The server broke HTTP/1.1, or closed the connection in the middle of an answer."""


class Headers(dict):
    """Response headers by lower-case name; lookups ignore case. Repeated headers are
    joined with ", " as RFC 9110 allows."""

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


@lru_cache(maxsize=256)
def _target(url: str) -> tuple[tuple, str, str]:
    """(origin, request target, Host header) of an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an upstream URL must be http or https with a host")
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), target, host if port == default_port else f"{host}:{port}"


def _is_dropped(sock) -> bool:
    """Whether an idle kept-alive connection has been closed by its server (or has junk on
    it): idle, it must have nothing to read."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class Pool:
    """Kept-alive connections, per origin (scheme, host, port), shared by threads or
    greenlets. At most `max_idle` wait per origin; a burst beyond that opens more, which
    are closed after use."""

    def __init__(self, max_idle: int, ssl_context: ssl.SSLContext | None = None):
        self.max_idle = max_idle
        self._ssl_context = ssl_context
        self._idle: dict[tuple, deque] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict, connect_timeout: float, read_timeout: float,
             stream: bool = False) -> "Response":
        """POST `body`; the answer's head is read, and its body too unless `stream`.

        Raises ConnectFailed/ConnectTimeout before anything is sent, TimeoutError when the
        server is silent for `read_timeout`, ProtocolError or OSError when the exchange
        breaks, ValueError for a URL or header that cannot be sent."""
        origin, target, host = _target(url)
        lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        names = set()
        for name, value in headers.items():
            value = str(value)
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise ValueError("a header that cannot be sent")
            lines.append(f"{name}: {value}")
            names.add(name.lower())
        if "user-agent" not in names:
            lines.append(f"User-Agent: {USER_AGENT}")
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: identity")  # as http.client asked
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

        sock = self._idle_connection(origin) or self._connect(origin, connect_timeout)
        try:
            sock.settimeout(read_timeout)
            sock.sendall(request)
            resp = Response(self, origin, sock)
        except BaseException:
            sock.close()
            raise
        if not stream:
            resp.data = resp.read()
        return resp

    def _idle_connection(self, origin):
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                sock = idle.pop() if idle else None  # the most recently used: least likely dropped
            if sock is None or not _is_dropped(sock):
                return sock
            sock.close()

    def _connect(self, origin, timeout: float):
        scheme, hostname, port = origin
        try:
            sock = socket.create_connection((hostname, port), timeout=timeout)
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {hostname}:{port} timed out")
        except OSError as e:
            raise ConnectFailed(f"connecting to {hostname}:{port} failed: {type(e).__name__}")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self.ssl_context().wrap_socket(sock, server_hostname=hostname)  # SNI, hostname check
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(f"the TLS handshake with {hostname}:{port} timed out")
        except (OSError, ValueError) as e:
            sock.close()
            raise ConnectFailed(f"the TLS handshake with {hostname}:{port} failed: {type(e).__name__}")
        return sock

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            context = ssl.create_default_context(cafile=certifi.where())  # the CA bundle requests used
            context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = context
        return self._ssl_context

    def _release(self, origin, sock) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, deque())
            if len(idle) < self.max_idle:
                idle.append(sock)
                return
        sock.close()

    def clear(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for sock in connections:
                sock.close()


class Response:
    """An answer whose head has been read. `data` is the body of a non-streamed answer;
    a streamed one is read with `blocks()` or `read()`. The connection goes back to the
    pool once the body has been read to its end; `close()` drops it before that."""

    def __init__(self, pool: Pool, origin, sock):
        self._pool, self._origin, self._sock = pool, origin, sock
        self._buffer = b""
        self.data = None
        while True:
            self.version, self.status, self.headers = self._read_head()
            if self.status >= 200:
                break
            if self.status == 101:
                raise ProtocolError("the server switched protocols")
            # 1xx (100 Continue, 103 Early Hints): an interim answer, the real one follows
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        transfer = self.headers.get("transfer-encoding", "").lower()
        self.chunked = False
        self._length = None
        if self.status in (204, 304):
            self._length = 0
        elif transfer:
            if transfer != "chunked":
                raise ProtocolError("a transfer encoding other than chunked")
            self.chunked = True
        elif "content-length" in self.headers:
            values = {v.strip() for v in self.headers["content-length"].split(",")}
            value = values.pop()
            if values or not value.isdigit():
                raise ProtocolError("a malformed Content-Length")
            self._length = int(value)
        else:
            self.keep_alive = False  # the body ends when the server closes the connection
        self._blocks = None

    def _recv(self) -> bytes:
        data = self._sock.recv(RECV_BYTES)
        if not data:
            raise ProtocolError("the server closed the connection in the middle of an answer")
        return data

    def _read_head(self):
        buffer = self._buffer
        start = 0
        while (end := buffer.find(b"\r\n\r\n", start)) == -1:
            if len(buffer) > MAX_HEADER_BYTES:
                raise ProtocolError("the answer's headers are too large")
            start = max(0, len(buffer) - 3)
            buffer += self._recv()
        if end > MAX_HEADER_BYTES:
            raise ProtocolError("the answer's headers are too large")
        self._buffer = buffer[end + 4:]
        lines = buffer[:end].decode("latin-1").split("\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise ProtocolError("the answer has too many headers")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isdigit() and rest[3:4] in ("", " ")):
            raise ProtocolError("a malformed status line")
        headers = Headers()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or name[0] in " \t":
                raise ProtocolError("a malformed header line")
            name, value = name.lower(), value.strip(" \t")
            headers[name] = f"{dict.__getitem__(headers, name)}, {value}" if dict.__contains__(headers, name) else value
        return version, int(code), headers

    def blocks(self):
        """The body's bytes (undecoded) as they arrive, each block as soon as it is read."""
        if self._blocks is None:
            if self.chunked:
                self._blocks = self._chunked()
            elif self._length is not None:
                self._blocks = self._sized(self._length)
            else:
                self._blocks = self._until_close()
        return self._blocks

    def _sized(self, remaining: int):
        data, self._buffer = self._buffer, b""
        if len(data) >= remaining:
            self._done(data[remaining:])
            if remaining:
                yield data[:remaining]
            return
        while True:
            if data:
                remaining -= len(data)
                if remaining <= 0:
                    break
                yield data
            data = self._recv()
        self._done(data[len(data) + remaining:])
        yield data[:len(data) + remaining]

    def _chunked(self):
        buffer, self._buffer, pos = self._buffer, b"", 0
        out = []
        while True:
            while (eol := buffer.find(b"\r\n", pos)) == -1:
                if len(buffer) - pos > MAX_LINE_BYTES:
                    raise ProtocolError("a malformed chunk")
                if out:
                    yield b"".join(out)
                    out = []
                buffer, pos = buffer[pos:] + self._recv(), 0
            size_text = buffer[pos:eol].split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                raise ProtocolError("a malformed chunk size")
            size, pos = int(size_text, 16), eol + 2
            if size == 0:
                break
            while size:
                if pos == len(buffer):
                    if out:
                        yield b"".join(out)
                        out = []
                    buffer, pos = self._recv(), 0
                piece = buffer[pos:pos + size]
                out.append(piece)
                pos += len(piece)
                size -= len(piece)
            while len(buffer) - pos < 2:
                if out:
                    yield b"".join(out)
                    out = []
                buffer, pos = buffer[pos:] + self._recv(), 0
            if buffer[pos:pos + 2] != b"\r\n":
                raise ProtocolError("a chunk longer than it said")
            pos += 2
        while True:  # trailers, then the empty line that ends the body
            while (eol := buffer.find(b"\r\n", pos)) == -1:
                if len(buffer) - pos > MAX_LINE_BYTES:
                    raise ProtocolError("a malformed trailer")
                if out:
                    yield b"".join(out)
                    out = []
                buffer, pos = buffer[pos:] + self._recv(), 0
            empty, pos = eol == pos, eol + 2
            if empty:
                break
        self._done(buffer[pos:])  # before the last yield: a caller that stops here has still released it
        if out:
            yield b"".join(out)

    def _until_close(self):
        data, self._buffer = self._buffer, b""
        while True:
            if data:
                yield data
            data = self._sock.recv(RECV_BYTES)
            if not data:
                self.close()
                return

    def _done(self, leftover: bytes) -> None:
        """The body has been read to its end: the connection is reused if nothing follows it
        and the server did not say it closes it."""
        sock, self._sock = self._sock, None
        if self.keep_alive and not leftover:
            self._pool._release(self._origin, sock)
        else:
            sock.close()

    def socket(self):
        """The connection while its body is still being read, else None."""
        return self._sock

    def read(self, limit: int | None = None) -> bytes:
        """The body, decoded (gzip, deflate); only its first `limit` bytes when given, which
        drops the connection if the body is longer."""
        if self.data is not None:
            return self.data if limit is None else self.data[:limit]
        pieces, size = [], 0
        try:
            for block in self.blocks():
                pieces.append(block)
                size += len(block)
                if limit is not None and size >= limit:
                    break
        finally:
            self.close()
        raw = b"".join(pieces)
        return _decode(raw[:limit] if limit is not None else raw, self.headers.get("content-encoding", ""), limit)

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (it is then pooled)."""
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _decode(raw: bytes, encoding: str, limit: int | None) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity") or not raw:
        return raw
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        # RFC 9110's deflate is zlib-wrapped, but some servers send it raw.
        decoder = zlib.decompressobj(zlib.MAX_WBITS if raw[0] & 0x0F == 8 else -zlib.MAX_WBITS)
    else:
        raise ProtocolError(f"an unsupported Content-Encoding: {encoding[:32]}")
    try:
        return decoder.decompress(raw, limit or 0)
    except zlib.error:
        raise ProtocolError("a body that does not decode")
