"""The upstream HTTP/1.1 client against real loopback servers: small raw-socket servers that
send exactly the bytes a test scripts, when it scripts them."""

import datetime
import gzip
import socket
import ssl
import struct
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.upstream import http1, calls as upstream
from gateway.api.errors import UpstreamError, UpstreamTimeout

CLOSE = object()  # in a script: the server closes the connection here
AWAIT_HANG_UP = object()  # in a script: the server waits (5 s at most) for the client to hang up
RESET = object()  # in a script: the server resets the connection (RST, not FIN)


def answer(body: bytes = b'{"ok": true}', status: str = "200 OK", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{headers}\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunked(*pieces: bytes, headers: str = "") -> bytes:
    body = b"".join(chunk(p) for p in pieces) + b"0\r\n\r\n"
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n{headers}\r\n" \
        .encode() + body


class Server:
    """Answers each request with the steps `script(request)` returns: bytes are sent, a float
    is a pause, a callable is called, CLOSE hangs up, RESET resets. Counts connections and
    hang-ups; `requests` holds every request in order of arrival."""

    def __init__(self, script, tls: ssl.SSLContext | None = None):
        self.script, self.tls = script, tls
        self.connections, self.requests = 0, []
        self.hung_up = threading.Event()  # a client closed its connection
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}/v1/chat/completions"

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while (request := self._read_request(conn)) is not None:
                self.requests.append(request)
                for step in self.script(request):
                    if step is CLOSE:
                        return
                    if step is RESET:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        return
                    if step is AWAIT_HANG_UP:
                        conn.settimeout(5)
                        if conn.recv(1) == b"":
                            self.hung_up.set()
                        return
                    if isinstance(step, float):
                        time.sleep(step)
                    elif callable(step):
                        step()
                    else:
                        conn.sendall(step)
            self.hung_up.set()
        except OSError:
            self.hung_up.set()
        finally:
            conn.close()

    @staticmethod
    def _read_request(conn) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return None
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += conn.recv(65536)
        return data

    def stop(self):
        self.listener.close()


@pytest.fixture
def serve():
    servers = []

    def start(script, tls=None) -> Server:
        servers.append(Server(script, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def pool():
    pool = http1.Pool(max_idle=4)
    yield pool
    pool.clear()


def post(pool, url, stream=False, read_timeout=5.0):
    return pool.post(url, b'{"model": "m"}', {"Content-Type": "application/json", "Authorization": "Bearer sk-x"},
                     connect_timeout=2.0, read_timeout=read_timeout, stream=stream)


def test_it_sends_one_request_and_reads_the_answer(serve, pool):
    server = serve(lambda request: [answer(headers="X-Thing: a\r\nx-thing: b\r\n")])
    resp = post(pool, server.url())
    assert (resp.status, resp.data) == (200, b'{"ok": true}')
    assert resp.headers["x-thing"] == resp.headers["X-THING"] == "a, b"
    head = server.requests[0].split(b"\r\n\r\n")[0]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}".encode() in head and b"Content-Length: 14" in head
    assert server.requests[0].endswith(b'{"model": "m"}')


def test_it_reuses_a_kept_alive_connection(serve, pool):
    server = serve(lambda request: [answer()])
    for _ in range(5):
        assert post(pool, server.url()).data == b'{"ok": true}'
    assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused(serve, pool):
    server = serve(lambda request: [answer(), 0.05, CLOSE])
    assert post(pool, server.url()).status == 200
    time.sleep(0.2)  # the server's FIN has arrived
    assert post(pool, server.url()).status == 200
    assert server.connections == 2


def test_junk_on_an_idle_connection_discards_it(serve, pool):
    server = serve(lambda request: [answer(), 0.05, b"HTTP/1.1 200 OK\r\n"])
    post(pool, server.url())
    time.sleep(0.2)
    assert post(pool, server.url()).status == 200
    assert server.connections == 2


def test_connection_close_is_honoured(serve, pool):
    server = serve(lambda request: [answer(headers="Connection: close\r\n")])
    post(pool, server.url())
    post(pool, server.url())
    assert server.connections == 2
    assert not any(pool._idle.values())


def test_a_body_without_length_is_read_until_close(serve, pool):
    server = serve(lambda request: [b"HTTP/1.1 200 OK\r\n\r\n", b"part one, ", 0.05, b"part two", CLOSE])
    assert post(pool, server.url()).data == b"part one, part two"
    assert not any(pool._idle.values())


def test_interim_answers_are_skipped(serve, pool):
    server = serve(lambda request: [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n",
                                    answer()])
    assert post(pool, server.url()).data == b'{"ok": true}'


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7])
def test_chunked_bodies_split_anywhere_are_read(serve, pool, step):
    raw = chunked(b'{"a": ', b"1", b' , "b": 2}', headers="Trailer: x\r\n")
    raw = raw.replace(b"0\r\n\r\n", b"0;ext=1\r\nX-Trailer: y\r\n\r\n")
    pieces = []
    for i in range(0, len(raw), step):
        pieces += [raw[i:i + step], 0.0005]
    server = serve(lambda request: pieces)
    for _ in range(2):
        assert post(pool, server.url()).data == b'{"a": 1 , "b": 2}'
    assert server.connections == 1


def test_a_gzipped_body_is_decoded(serve, pool):
    body = gzip.compress(b'{"text": "' + b"z" * 5000 + b'"}')
    server = serve(lambda request: [answer(body, headers="Content-Encoding: gzip\r\n")])
    assert post(pool, server.url()).data == b'{"text": "' + b"z" * 5000 + b'"}'


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 200 + b"Content-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"ICY 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\ncut short",
])
def test_broken_answers_are_upstream_errors(serve, raw):
    server = serve(lambda request: [raw, CLOSE])
    with pytest.raises(UpstreamError, match="Could not reach the upstream provider."):
        upstream.post(server.url(), b"{}", {}, read_timeout=2, stream=False)


def test_a_silent_server_is_a_read_timeout(serve):
    server = serve(lambda request: [1.0])
    with pytest.raises(UpstreamTimeout, match="did not answer within 0.2 seconds"):
        upstream.post(server.url(), b"{}", {}, read_timeout=0.2, stream=False)


def test_a_refused_connection_is_an_upstream_error():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(UpstreamError, match="^Could not reach the upstream provider.$"):
        upstream.post(f"http://127.0.0.1:{port}/v1/x", b"{}", {}, read_timeout=2, stream=False)


def test_a_connect_timeout_says_so(monkeypatch):
    def slow(*args, **kwargs):
        raise TimeoutError

    monkeypatch.setattr(http1.socket, "create_connection", slow)
    with pytest.raises(UpstreamError, match="^Could not connect to the upstream provider in time.$"):
        upstream.post("http://192.0.2.1/v1/x", b"{}", {}, read_timeout=2, stream=False)


def test_streamed_events_are_relayed_as_they_arrive(serve, pool):
    first_seen = threading.Event()
    server = serve(lambda request: [chunked()[:-5], chunk(b'data: {"n": 1}\n\n'),
                                    lambda: first_seen.wait(5), chunk(b'data: {"n": 2}\n\n'),
                                    chunk(b"data: [DONE]\n\n"), b"0\r\n\r\n"])
    for _ in range(2):
        events = upstream.iter_sse_data(post(pool, server.url(), stream=True), 5.0, last=b"[DONE]")
        started = time.monotonic()
        assert next(events) == b'{"n": 1}'
        assert time.monotonic() - started < 2  # not held back until the server sent more
        first_seen.set()
        assert list(events) == [b'{"n": 2}', b"[DONE]"]
        first_seen.clear()
    assert server.connections == 1  # a stream read to its end goes back to the pool


def test_closing_a_stream_drops_its_connection_at_once(serve, pool):
    server = serve(lambda request: [chunked()[:-5], chunk(b'data: {"n": 1}\n\n'), AWAIT_HANG_UP])
    events = upstream.iter_sse_data(post(pool, server.url(), stream=True), 5.0, last=b"[DONE]")
    assert next(events) == b'{"n": 1}'
    events.close()
    assert server.hung_up.wait(1)
    assert not any(pool._idle.values())


def test_a_stream_that_breaks_off_is_an_upstream_error(serve, pool):
    server = serve(lambda request: [chunked()[:-5], chunk(b'data: {"n": 1}\n\n'), CLOSE])
    events = upstream.iter_sse_data(post(pool, server.url(), stream=True), 5.0, last=b"[DONE]")
    assert next(events) == b'{"n": 1}'
    with pytest.raises(UpstreamError, match="stream broke off"):
        next(events)


def test_the_pool_keeps_at_most_its_size_idle(serve):
    pool = http1.Pool(max_idle=1)
    server = serve(lambda request: [chunked(b"data: [DONE]\n\n")])
    streams = [post(pool, server.url(), stream=True) for _ in range(3)]
    for resp in streams:
        assert resp.read() == b"data: [DONE]\n\n"
    assert server.connections == 3
    assert [len(idle) for idle in pool._idle.values()] == [1]
    pool.clear()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for "localhost" (and no IP address), as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_server(serve, certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return serve(lambda request: [answer()], tls=context)


def test_it_speaks_tls_to_a_trusted_certificate(tls_server, certificate):
    pool = http1.Pool(max_idle=4, ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    for _ in range(3):
        assert post(pool, tls_server.url("localhost", "https")).data == b'{"ok": true}'
    assert tls_server.connections == 1
    pool.clear()


def test_tls_checks_the_host_name(tls_server, certificate):
    pool = http1.Pool(max_idle=4, ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    with pytest.raises(http1.ConnectFailed):
        post(pool, tls_server.url("127.0.0.1", "https"))


def test_tls_trusts_certifis_authorities_by_default(tls_server):
    with pytest.raises(UpstreamError, match="^Could not reach the upstream provider.$"):
        upstream.post(tls_server.url("localhost", "https"), b"{}", {}, read_timeout=2, stream=False)


def test_ipv6_hosts_and_default_ports_make_the_host_header():
    assert http1._target("https://[::1]/v1/x?y=1") == (("https", "::1", 443), "/v1/x?y=1", "[::1]")
    assert http1._target("http://example.com:8080") == (("http", "example.com", 8080), "/", "example.com:8080")


def test_headers_that_would_split_the_request_are_refused(serve, pool):
    server = serve(lambda request: [answer()])
    with pytest.raises(ValueError):
        pool.post(server.url(), b"", {"X-Bad": "a\r\nInjected: 1"}, 2.0, 2.0)
    assert server.connections == 0
