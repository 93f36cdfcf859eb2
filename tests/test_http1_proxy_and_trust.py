"""The upstream client in a real deployment: an internal certificate authority trusted
through SSL_CERT_FILE, and an outbound proxy (CONNECT tunnels for https, absolute-form for
http) with NO_PROXY, against loopback servers and a loopback proxy."""

import base64
import datetime
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.upstream import http1, calls as upstream
from gateway.api.errors import UpstreamError
from gateway.upstream.http1_proxy import ProxyRoutes
from tests.test_http1 import answer, post, serve  # noqa: F401 (serve is a fixture)

ROOT = Path(__file__).resolve().parent.parent


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def internal_ca(tmp_path_factory):
    """An internal CA and a server certificate for "localhost" it signed, as PEM files:
    (ca.pem, server cert.pem, server key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Internal Test CA")).issuer_name(_name("Internal Test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("internal-ca")
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def internal_server(serve, internal_ca):  # noqa: F811 (the fixture above)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(internal_ca[1], internal_ca[2])
    return serve(lambda request: [answer()], tls=context)


class LoopbackProxy:
    """A forward proxy: CONNECT opens a tunnel, an absolute-form request is passed on as it
    came. `heads` holds the head of every request it was asked, `refuse` makes it answer
    CONNECT with that status instead."""

    def __init__(self, refuse: str | None = None):
        self.refuse, self.heads = refuse, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            self.heads.append(head)
            method, target, _ = head.split("\r\n", 1)[0].split(" ")
            if method == "CONNECT":
                if self.refuse:
                    conn.sendall(f"HTTP/1.1 {self.refuse}\r\nContent-Length: 0\r\n\r\n".encode())
                    return
                host, port = target.rsplit(":", 1)
                onward = socket.create_connection((host, int(port)))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                onward = socket.create_connection((parts.hostname, parts.port or 80))
                onward.sendall(data)
            with onward:
                threading.Thread(target=self._pipe, args=(onward, conn), daemon=True).start()
                self._pipe(conn, onward)

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self):
        self.listener.close()


@pytest.fixture
def proxy():
    started = []

    def start(**kwargs) -> LoopbackProxy:
        started.append(LoopbackProxy(**kwargs))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def test_a_certificate_from_an_internal_ca_is_trusted_once_its_file_is_named(internal_server, internal_ca):
    pool = http1.Pool(max_idle=4, ssl_context=http1.trusted_authorities(ca_file=str(internal_ca[0])))
    for _ in range(3):
        assert post(pool, internal_server.url("localhost", "https")).data == b'{"ok": true}'
    assert internal_server.connections == 1
    pool.clear()


def test_without_the_internal_ca_the_certificate_is_refused(internal_server):
    pool = http1.Pool(max_idle=4, ssl_context=http1.trusted_authorities())
    with pytest.raises(http1.ConnectFailed, match="SSLCertVerificationError"):
        post(pool, internal_server.url("localhost", "https"))


def test_the_system_store_is_trusted_as_well_as_certifi():
    context = http1.trusted_authorities()
    subjects = {dict(item[0] for item in ca["subject"]).get("commonName") for ca in context.get_ca_certs()}
    system = ssl.create_default_context().get_ca_certs()
    assert len(context.get_ca_certs()) >= len(system)
    assert "ISRG Root X1" in subjects  # certifi's, present even where the system has no store


def test_https_goes_through_a_connect_tunnel_with_the_proxys_credentials(internal_server, internal_ca, proxy):
    through = proxy()
    routes = ProxyRoutes(https_proxy=through.url.replace("http://", "http://gw%40corp:s3cret@"))
    pool = http1.Pool(max_idle=4, ssl_context=http1.trusted_authorities(str(internal_ca[0])), proxies=routes)
    for _ in range(3):
        assert post(pool, internal_server.url("localhost", "https")).data == b'{"ok": true}'
    assert len(through.heads) == 1  # one tunnel, kept alive for all three
    assert through.heads[0].startswith(f"CONNECT localhost:{internal_server.port} HTTP/1.1\r\n")
    assert f"Proxy-Authorization: Basic {base64.b64encode(b'gw@corp:s3cret').decode()}" in through.heads[0]
    # Inside the tunnel the upstream sees an ordinary request, and never the proxy's credentials.
    assert internal_server.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in internal_server.requests[0]
    pool.clear()


def test_plain_http_goes_to_the_proxy_in_absolute_form(serve, proxy):  # noqa: F811
    server = serve(lambda request: [answer()])
    through = proxy()
    pool = http1.Pool(max_idle=4, proxies=ProxyRoutes(http_proxy=through.url.replace("http://", "http://u:p@")))
    assert post(pool, server.url()).data == b'{"ok": true}'
    assert through.heads[0].startswith(f"POST http://127.0.0.1:{server.port}/v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}" in through.heads[0]
    assert "Proxy-Authorization: Basic dTpw" in through.heads[0]
    pool.clear()


@pytest.mark.parametrize("no_proxy", ["*", "127.0.0.1", "127.0.0.0/8", "localhost,127.0.0.1:{port}"])
def test_no_proxy_sends_matching_hosts_direct(serve, proxy, no_proxy):  # noqa: F811
    server = serve(lambda request: [answer()])
    through = proxy()
    routes = ProxyRoutes(http_proxy=through.url, no_proxy=no_proxy.format(port=server.port))
    pool = http1.Pool(max_idle=4, proxies=routes)
    assert post(pool, server.url()).data == b'{"ok": true}'
    assert through.heads == []
    pool.clear()


def test_no_proxy_rules():
    routes = ProxyRoutes(https_proxy="proxy.corp:3128", http_proxy="",
                         no_proxy=" .internal.example, Models.Example:8443 ,10.0.0.0/8,[::1]:9000,fd00::1")
    through = routes.for_origin(("https", "api.openai.com", 443))
    assert (through.host, through.port, through.authorization) == ("proxy.corp", 3128, None)
    for host, port in [("internal.example", 443), ("a.b.internal.example", 443), ("models.example", 8443),
                       ("MODELS.example", 8443), ("10.1.2.3", 443), ("::1", 9000), ("fd00::1", 443)]:
        assert routes.for_origin(("https", host, port)) is None, (host, port)
    for host, port in [("notinternal.example", 443), ("models.example", 443), ("11.0.0.1", 443), ("::1", 443)]:
        assert routes.for_origin(("https", host, port)) is not None, (host, port)
    assert routes.for_origin(("http", "api.openai.com", 80)) is None  # no HTTP_PROXY set


def test_a_proxy_that_refuses_the_tunnel_is_an_upstream_error_without_its_credentials(proxy, caplog):
    through = proxy(refuse="407 Proxy Authentication Required")
    pool = http1.Pool(max_idle=4, proxies=ProxyRoutes(https_proxy=through.url.replace("http://", "http://u:hunter2@")))
    with pytest.raises(http1.ConnectFailed, match="HTTP 407") as failure:
        post(pool, "https://localhost:9/v1/chat/completions")
    assert "hunter2" not in str(failure.value)


def test_the_environment_reaches_the_client_through_settings(internal_server, internal_ca, proxy, tmp_path):
    """HTTPS_PROXY, NO_PROXY and SSL_CERT_FILE as an operator sets them, in a fresh process."""
    through = proxy()
    script = (
        "import django; django.setup()\n"
        "from gateway.upstream import calls as upstream\n"
        f"print(upstream.post({internal_server.url('localhost', 'https')!r}, b'{{}}', {{}}, 5, False).data.decode())\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "HTTPS_PROXY": through.url,
           "NO_PROXY": "example.com", "SSL_CERT_FILE": str(internal_ca[0])}
    for name in ("https_proxy", "no_proxy", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == '{"ok": true}', done.stderr[-2000:]
    assert through.heads[0].startswith(f"CONNECT localhost:{internal_server.port} ")


def test_an_upstream_behind_an_untrusted_certificate_is_an_upstream_error(internal_server):
    with pytest.raises(UpstreamError, match="^Could not reach the upstream provider.$"):
        upstream.post(internal_server.url("localhost", "https"), b"{}", {}, read_timeout=2, stream=False)


def test_a_proxy_the_client_cannot_speak_stops_the_process():
    env = {**os.environ, "HTTPS_PROXY": "https://proxy.corp:3128"}
    env.pop("https_proxy", None)
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "HTTPS_PROXY must be an http:// proxy" in done.stderr
