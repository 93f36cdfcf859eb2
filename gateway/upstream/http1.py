"""A small HTTP/1.1 client for POSTing JSON to upstream providers, with keep-alive pools.

Written for the one exchange the gateway makes (a POST with a body in hand, an answer read
in full or relayed as it arrives), because a general client (urllib3 over http.client)
cost ten times the CPU of the exchange itself. Plain blocking sockets, so it runs the same
under threads and under gevent's patched sockets. What a deployment needs and nothing
more: the system's and the operator's certificate authorities, an outbound proxy
(http1_proxy.py), one retry when a kept-alive connection turns out closed, and a cap on
the bytes an answer may take (read and decoded). No redirects, cookies or other retries:
those are not the gateway's to want.
"""

import select
import socket
import ssl
import threading
from collections import deque
from functools import lru_cache
from urllib.parse import urlsplit

from gevent import monkey

# The readiness check below never waits (a timeout of 0), so it needs none of what gevent's
# patched poll adds for waiting: the C one costs 0.6 µs a check against gevent's 12 µs.
_poll = monkey.get_original("select", "poll") if hasattr(select, "poll") else None

import certifi

from .http1_proxy import Proxy, ProxyRoutes, TunnelFailed, open_tunnel
# The answer and its errors are this client's interface too: callers name them as http1.*.
from .http1_response import AnswerTooLarge, ClosedBeforeAnswer, ProtocolError, Response

USER_AGENT = "MixGateway"
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024


class ConnectFailed(Exception):
    """The connection (or its TLS handshake) could not be made: refused, unreachable, unknown
    host, an untrusted certificate."""


class ConnectTimeout(ConnectFailed):
    pass


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
        if _poll is not None:
            poller = _poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def trusted_authorities(ca_file: str = "", ca_dir: str = "") -> ssl.SSLContext:
    """A TLS context trusting the system's certificate store, certifi's bundle (for images
    without one) and the operator's own authorities (SSL_CERT_FILE, SSL_CERT_DIR)."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    if ca_file or ca_dir:
        context.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)
    context.set_alpn_protocols(["http/1.1"])
    return context


class Pool:
    """Kept-alive connections, per origin (scheme, host, port), shared by threads or
    greenlets. At most `max_idle` wait per origin; a burst beyond that opens more, which
    are closed after use. An answer over `max_answer_bytes` (read, or once decoded) is
    refused with AnswerTooLarge, however it is read."""

    def __init__(self, max_idle: int, ssl_context: ssl.SSLContext | None = None,
                 proxies: ProxyRoutes | None = None, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES):
        self.max_idle = max_idle
        self.max_answer_bytes = max_answer_bytes
        self._ssl_context = ssl_context
        self._proxies = proxies
        self._proxy_of: dict[tuple, Proxy | None] = {}
        self._idle: dict[tuple, deque] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict, connect_timeout: float, read_timeout: float,
             stream: bool = False) -> Response:
        """POST `body`; the answer's head is read, and its body too unless `stream`.

        Raises ConnectFailed/ConnectTimeout before anything is sent, TimeoutError when the
        server is silent for `read_timeout`, ProtocolError or OSError when the exchange
        breaks, ValueError for a URL or header that cannot be sent."""
        origin, target, host = _target(url)
        proxy = self._proxy(origin) if self._proxies else None
        if proxy is not None and origin[0] == "http":  # absolute-form: the proxy forwards it
            lines = [f"POST http://{host}{target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
            if proxy.authorization:
                lines.append(f"Proxy-Authorization: {proxy.authorization}")
        else:
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

        sock = self._idle_connection(origin)
        if sock is not None:
            try:
                return self._exchange(sock, origin, request, read_timeout, stream)
            except ClosedBeforeAnswer:
                # The server closed this kept-alive connection as we reused it (its idle
                # timeout crossed our request): nothing came back, so once more on a new one.
                pass
        return self._exchange(self._connect(origin, connect_timeout, proxy), origin, request, read_timeout, stream)

    def _exchange(self, sock, origin, request: bytes, read_timeout: float, stream: bool) -> Response:
        try:
            sock.settimeout(read_timeout)
            try:
                sock.sendall(request)
            except ConnectionError:
                raise ClosedBeforeAnswer("the server closed the connection before the request was sent")
            resp = Response(self, origin, sock)
        except BaseException:
            sock.close()
            raise
        if not stream:
            resp.data = resp.read()
        return resp

    def _proxy(self, origin) -> Proxy | None:
        if origin not in self._proxy_of:
            self._proxy_of[origin] = self._proxies.for_origin(origin)
        return self._proxy_of[origin]

    def _idle_connection(self, origin):
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                sock = idle.pop() if idle else None  # the most recently used: least likely dropped
            if sock is None or not _is_dropped(sock):
                return sock
            sock.close()

    def _connect(self, origin, timeout: float, proxy: Proxy | None):
        scheme, hostname, port = origin
        address = (proxy.host, proxy.port) if proxy else (hostname, port)
        where = f"{hostname}:{port}" + (f" through the proxy {proxy.host}:{proxy.port}" if proxy else "")
        try:
            sock = socket.create_connection(address, timeout=timeout)
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {where} timed out")
        except OSError as e:
            raise ConnectFailed(f"connecting to {where} failed: {type(e).__name__}")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                if proxy:
                    open_tunnel(sock, hostname, port, proxy)
                sock = self.ssl_context().wrap_socket(sock, server_hostname=hostname)  # SNI, hostname check
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(f"the TLS handshake with {where} timed out")
        except (OSError, ValueError) as e:
            sock.close()
            reason = str(e) if isinstance(e, TunnelFailed) else type(e).__name__
            raise ConnectFailed(f"the TLS handshake with {where} failed: {reason}")
        return sock

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = trusted_authorities()
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

