"""HTTP to upstream providers: one pooled session per process, and the translation of
everything that can go wrong on the wire into the gateway's own errors."""

import json
import logging
import os
import re
from collections.abc import Iterator
from http.cookiejar import DefaultCookiePolicy

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from .errors import GatewayError, UpstreamError, UpstreamTimeout
from .upstream_keys import decrypt

log = logging.getLogger(__name__)

MAX_ERROR_BODY_BYTES = 64 * 1024
_KEY_LIKE = re.compile(r"\b(sk|key|pk|rk)[-_][A-Za-z0-9*_\-.]{6,}")


def _new_session() -> requests.Session:
    session = requests.Session()
    # One session serves every tenant: a cookie set by an upstream must never ride along
    # on another tenant's request.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.trust_env = False  # no proxy or netrc surprises from the process environment
    adapter = HTTPAdapter(
        pool_connections=16, pool_maxsize=settings.GATEWAY_UPSTREAM_POOL_SIZE, max_retries=0, pool_block=False
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_session = None


def session() -> requests.Session:
    global _session
    if _session is None:
        _session = _new_session()
    return _session


def api_key_for(route) -> str | None:
    """The provider's key, from the environment variable the catalog names.

    Read here rather than in settings.py because the catalog, not the code, decides which
    variables exist; the value is never stored, logged or echoed.
    """
    if not route.api_key_env:
        if route.api_key_encrypted:
            value = decrypt(route.api_key_encrypted)
            if value:
                return value
            log.error("provider %s: its stored key cannot be decrypted with this process's key", route.provider)
            raise UpstreamError(f"The provider '{route.provider}' is not configured on this gateway.")
        return None  # a local server (vLLM, Ollama) may need no key
    value = os.environ.get(route.api_key_env, "")
    if not value:
        log.error("provider %s: environment variable %s is not set", route.provider, route.api_key_env)
        raise UpstreamError(f"The provider '{route.provider}' is not configured on this gateway.")
    return value


def read_timeout(route) -> float:
    return route.timeout_seconds or settings.GATEWAY_DEFAULT_TIMEOUT_SECONDS


def scrub(text: str) -> str:
    """Upstream messages can quote our upstream key (masked or not); never pass that on."""
    return _KEY_LIKE.sub("[redacted]", text)


def post(url: str, body: dict, headers: dict, read_timeout: float, stream: bool) -> requests.Response:
    timeout = (settings.GATEWAY_CONNECT_TIMEOUT_SECONDS, read_timeout)
    try:
        return session().post(url, data=json.dumps(body), headers=headers, timeout=timeout, stream=stream)
    except requests.exceptions.ConnectTimeout:
        raise UpstreamError("Could not connect to the upstream provider in time.")
    except requests.exceptions.Timeout:
        raise UpstreamTimeout(f"The upstream provider did not answer within {read_timeout:g} seconds.")
    except requests.exceptions.RequestException as e:
        log.warning("upstream request to %s failed: %s", url, type(e).__name__)
        raise UpstreamError("Could not reach the upstream provider.")


def error_from_response(resp: requests.Response, provider: str, streamed: bool) -> GatewayError:
    """An upstream's non-200 answer, restated for our caller."""
    status = resp.status_code
    try:
        # A streamed response's body is still on the wire: read only as much as an error needs.
        raw = resp.raw.read(MAX_ERROR_BODY_BYTES, decode_content=True) if streamed else resp.content
        payload = json.loads(raw) if raw else {}
    except (ValueError, urllib3.exceptions.HTTPError, OSError):
        payload = {}
    finally:
        resp.close()
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    message = scrub(str(error.get("message") or f"HTTP {status}"))
    code = error.get("code") if isinstance(error.get("code"), str) else None
    log.warning("upstream %s answered %s: %s", provider, status, message)
    if status in (401, 403) or code == "insufficient_quota":
        # The upstream refused the gateway's own credentials or account: the operator's
        # problem, and telling the caller "invalid_api_key" would blame the wrong key.
        return UpstreamError(f"The upstream provider '{provider}' refused the gateway's credentials or account.")
    if 400 <= status < 500:
        headers = {"retry-after": resp.headers["retry-after"]} if "retry-after" in resp.headers else None
        return GatewayError(
            message,
            status=status,
            error_type=str(error.get("type") or "invalid_request_error"),
            code=code or "upstream_rejected",
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            headers=headers,
        )
    if status == 504:
        return UpstreamTimeout(f"The upstream provider '{provider}' timed out (HTTP 504).")
    return UpstreamError(f"The upstream provider '{provider}' failed (HTTP {status}).")


def iter_sse_data(resp: requests.Response, read_timeout: float) -> Iterator[bytes]:
    """The data payloads of a server-sent event stream, each as soon as it arrives."""
    buffer = b""
    raw = resp.raw
    try:
        while True:
            # read1 returns whatever has arrived instead of waiting for a full buffer, so
            # each event is relayed the moment the upstream sends it.
            block = raw.read1(65536)
            if not block:
                break
            buffer += block.replace(b"\r\n", b"\n") if b"\r" in block else block
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
                if data:
                    yield b"\n".join(data)
    except urllib3.exceptions.ReadTimeoutError:
        raise UpstreamTimeout(f"The upstream provider sent nothing for {read_timeout:g} seconds.")
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError):
        raise UpstreamError("The upstream provider's stream broke off.")
    finally:
        resp.close()
    if buffer.strip():
        raise UpstreamError("The upstream provider's stream ended in the middle of an event.")
