"""HTTP to upstream providers: one connection pool per process (keep-alive per upstream
origin), and the translation of everything that can go wrong on the wire into the
gateway's own errors.

The HTTP itself is http1.py's: a client made for this one exchange, because urllib3 over
http.client cost ten times the CPU of the exchange. It is plain blocking socket code, so it
runs the same under threads and gevent's patched sockets.
"""

import logging
import os
from collections.abc import Iterator

from django.conf import settings

from . import http1
from ..parsing.encoding import loads
from ..api.errors import GatewayError, UpstreamError, UpstreamOverloaded, UpstreamTimeout
from .redaction import redact
from .upstream_keys import decrypt

log = logging.getLogger(__name__)

MAX_ERROR_BODY_BYTES = 64 * 1024
END_OF_BODY_WAIT_SECONDS = 0.1

_pool = None


def pool() -> http1.Pool:
    """The process's kept-alive upstream connections. Shared by every tenant, which is safe
    because http1 keeps no cookies and the proxy and trusted authorities are the
    operator's, the same for all. Created on first use, after gevent (if any) has patched
    the socket module."""
    global _pool
    if _pool is None:
        _pool = http1.Pool(
            max_idle=settings.GATEWAY_UPSTREAM_POOL_SIZE,
            ssl_context=http1.trusted_authorities(settings.UPSTREAM_CA_FILE, settings.UPSTREAM_CA_DIR),
            proxies=http1.ProxyRoutes(settings.UPSTREAM_HTTPS_PROXY, settings.UPSTREAM_HTTP_PROXY,
                                      settings.UPSTREAM_NO_PROXY),
            max_answer_bytes=settings.GATEWAY_MAX_UPSTREAM_BYTES,
        )
    return _pool


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


def has_key(route) -> bool:
    """Whether api_key_for would find the provider's key (or the provider needs none),
    without logging or raising: for pages and listings that show what can work."""
    if route.api_key_env:
        return bool(os.environ.get(route.api_key_env))
    return not route.api_key_encrypted or bool(decrypt(route.api_key_encrypted))


def read_timeout(route) -> float:
    return route.timeout_seconds or settings.GATEWAY_DEFAULT_TIMEOUT_SECONDS


def scrub(text: str) -> str:
    """Upstream messages can quote our upstream key (masked or not); never pass that on."""
    return redact(text)


def post(url: str, body: bytes, headers: dict, read_timeout: float, stream: bool) -> http1.Response:
    """POST `body` (JSON, already serialised); a streamed answer's body is left on the wire,
    any other is read in full. Redirects are answered, not followed; nothing is
    retried but a kept-alive connection found closed (http1 does that once, on a new
    connection, before any byte came back); retries and failover are resilience.py's."""
    try:
        return pool().post(url, body, headers, settings.GATEWAY_CONNECT_TIMEOUT_SECONDS, read_timeout, stream)
    except http1.ConnectTimeout:
        raise UpstreamError("Could not connect to the upstream provider in time.")
    except http1.ConnectFailed as e:  # refused, unreachable, unknown host, bad certificate
        log.warning("upstream request to %s failed: %s", url, e)
        raise UpstreamError("Could not reach the upstream provider.")
    except TimeoutError:
        raise UpstreamTimeout(f"The upstream provider did not answer within {read_timeout:g} seconds.")
    except http1.AnswerTooLarge as e:
        raise _too_large("answer", url, e)
    except (http1.ProtocolError, OSError, ValueError) as e:
        log.warning("upstream request to %s failed: %s", url, type(e).__name__)
        raise UpstreamError("Could not reach the upstream provider.")


def _too_large(kind: str, where: str, e: http1.AnswerTooLarge) -> UpstreamError:
    log.warning("upstream %s from %s refused: %s (GATEWAY_MAX_UPSTREAM_BYTES)", kind, where, e)
    return UpstreamError(f"The upstream provider's {kind} is larger than this gateway accepts.")


def json_body(resp: http1.Response, provider: str):
    """A non-streamed answer's JSON, parsed from its bytes once."""
    try:
        return loads(resp.data)
    except ValueError:  # includes a body that is not UTF-8
        raise UpstreamError(f"The upstream provider '{provider}' sent an answer that is not JSON.")


def error_from_response(resp: http1.Response, provider: str, streamed: bool) -> GatewayError:
    """An upstream's non-200 answer, restated for our caller."""
    status = resp.status
    try:
        # A streamed response's body is still on the wire: read only as much as an error needs.
        raw = resp.read(MAX_ERROR_BODY_BYTES) if streamed else resp.data
        payload = loads(raw) if raw else {}
    except (ValueError, http1.ProtocolError, OSError):
        payload = {}
    finally:
        if streamed:
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
    if status == 529 or error.get("type") == "overloaded_error":
        return UpstreamOverloaded(f"The upstream provider '{provider}' is overloaded (HTTP {status}).")
    return UpstreamError(f"The upstream provider '{provider}' failed (HTTP {status}).")


def iter_sse_data(resp: http1.Response, read_timeout: float, last: bytes | None = None) -> Iterator[bytes]:
    """The data payloads of a server-sent event stream, each as soon as it arrives.

    `last` is the payload that ends the stream ([DONE] in OpenAI's protocol): the stream
    ends after it. A stream read to the end of its body hands its connection back to the
    pool; one left early (the caller went away, an error) closes it.
    """
    buffer = b""
    blocks = resp.blocks()  # each as soon as it arrives, never waiting for a buffer to fill
    try:
        for block in blocks:
            buffer = buffer + block if buffer else block
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            start = 0
            end = buffer.find(b"\n\n")
            while end != -1:
                event = buffer[start:end]
                start = end + 2
                end = buffer.find(b"\n\n", start)
                if event.startswith(b"data:") and b"\n" not in event:
                    data = event[5:].lstrip(b" ")  # the usual event: one data line
                else:
                    lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
                    if not lines:
                        continue
                    data = b"\n".join(lines)
                yield data
                if data == last:
                    _read_to_end(resp, blocks)
                    return
            buffer = buffer[start:]
    except TimeoutError:
        raise UpstreamTimeout(f"The upstream provider sent nothing for {read_timeout:g} seconds.")
    except http1.AnswerTooLarge as e:
        raise _too_large("stream", "a stream", e)
    except (http1.ProtocolError, OSError):
        raise UpstreamError("The upstream provider's stream broke off.")
    finally:
        resp.close()
    if buffer.strip():
        raise UpstreamError("The upstream provider's stream ended in the middle of an event.")


def _read_to_end(resp: http1.Response, blocks) -> None:
    """After a stream's last event, read the end of its body if it comes at once: the
    connection then goes back to the pool (saving a TCP and TLS handshake on the next
    stream) instead of being closed. Waits END_OF_BODY_WAIT_SECONDS at most."""
    sock = resp.socket() if resp.keep_alive else None
    if sock is None:
        return  # already pooled (its end came with the last event), or not to be kept
    try:
        sock.settimeout(END_OF_BODY_WAIT_SECONDS)  # the pool sets its own timeout again on reuse
        for _ in range(4):
            next(blocks)  # nothing should follow the last event; a body that goes on is closed
    except (StopIteration, http1.ProtocolError, OSError):
        pass  # iter_sse_data closes the connection unless it was pooled
