"""The outbound proxy for upstream calls: which origins go through it (HTTPS_PROXY,
HTTP_PROXY and NO_PROXY, read the way curl and requests read them), and the CONNECT
handshake that opens a tunnel through it for https.

Plain data, no I/O of its own except the handshake: http1.Pool asks `ProxyRoutes.for_origin`
once per origin and remembers the answer.
"""

import ipaddress
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_CONNECT_ANSWER_BYTES = 16 * 1024


class TunnelFailed(ConnectionError):
    """The proxy would not (or could not) open a tunnel to the upstream."""


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from credentials in the URL

    @classmethod
    def from_url(cls, url: str) -> "Proxy | None":
        """`http://[user:password@]host[:port]` or a bare `host:port`; empty means none."""
        url = url.strip()
        if not url:
            return None
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("a proxy must be given as http://host:port")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + b64encode(pair.encode()).decode("ascii")
        return cls(parts.hostname, parts.port or 80, authorization)


class _Bypass:
    """NO_PROXY: `*` (no proxy at all), domains (`example.com` and `.example.com` both
    cover the domain and its subdomains), `host:port`, IP addresses and CIDR ranges."""

    def __init__(self, no_proxy: str):
        self.everything = False
        self.rules: list[tuple[str | ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]] = []
        for entry in no_proxy.lower().replace(" ", "").split(","):
            if not entry:
                continue
            if entry == "*":
                self.everything = True
                continue
            host, port = entry, None
            if entry.startswith("["):  # [v6] or [v6]:port
                host, _, rest = entry[1:].partition("]")
                port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
            elif entry.count(":") == 1:
                name, _, number = entry.partition(":")
                if number.isdigit():
                    host, port = name, int(number)
            try:
                self.rules.append((ipaddress.ip_network(host, strict=False), port))
            except ValueError:
                self.rules.append((host.removeprefix("*").lstrip("."), port))

    def covers(self, hostname: str, port: int) -> bool:
        if self.everything:
            return True
        hostname = hostname.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(hostname)
        except ValueError:
            address = None
        for rule, rule_port in self.rules:
            if rule_port is not None and rule_port != port:
                continue
            if isinstance(rule, str):
                if hostname == rule or hostname.endswith("." + rule):
                    return True
            elif address is not None and address.version == rule.version and address in rule:
                return True
        return False


class ProxyRoutes:
    """Which proxy, if any, each upstream origin (scheme, host, port) is reached through."""

    def __init__(self, https_proxy: str = "", http_proxy: str = "", no_proxy: str = ""):
        self._by_scheme = {"https": Proxy.from_url(https_proxy), "http": Proxy.from_url(http_proxy)}
        self._bypass = _Bypass(no_proxy)

    def __bool__(self) -> bool:
        """False when no proxy is configured at all: the pool then skips the question."""
        return any(self._by_scheme.values())

    def for_origin(self, origin: tuple) -> Proxy | None:
        scheme, hostname, port = origin
        proxy = self._by_scheme[scheme]
        if proxy is None or self._bypass.covers(hostname, port):
            return None
        return proxy


def open_tunnel(sock, hostname: str, port: int, proxy: Proxy) -> None:
    """Ask the proxy on `sock` for a tunnel to hostname:port; on return, `sock` is a byte
    stream to the upstream itself (TLS is started over it by the caller)."""
    authority = f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = b""
    while (end := answer.find(b"\r\n\r\n")) == -1:
        if len(answer) > MAX_CONNECT_ANSWER_BYTES:
            raise TunnelFailed("the proxy's answer to CONNECT is too large")
        more = sock.recv(4096)
        if not more:
            raise TunnelFailed("the proxy closed the connection instead of opening a tunnel")
        answer += more
    status = answer.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].startswith(b"2"):
        code = status[1][:3].decode("latin-1") if len(status) > 1 else "?"
        raise TunnelFailed(f"the proxy refused a tunnel to {authority} (HTTP {code})")
    if answer[end + 4:]:
        raise TunnelFailed("the proxy sent bytes before the tunnel was used")
