"""The error envelope, with our request id, for every failure on /v1: `gateway_error` is
the one place an exception becomes what the caller is told (DESIGN.md's table), and an
encoding says it in the caller's dialect: OpenAI's envelope (`openai_error`, every surface
but one) or Anthropic's (`anthropic_error`, /v1/messages)."""

import logging

import psycopg_pool
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.negotiation import BaseContentNegotiation

from billing import redis_pool

from ..parsing.encoding import encode
from ..observability import request_refused

log = logging.getLogger(__name__)

# Redis (or Redis Cluster) or PostgreSQL out of reach: the live store's own "unavailable"
# (when billing has one) and the drivers' connection failures. Django wraps psycopg's and the pool's errors
# in OperationalError; the pool's timeout is listed too for code that meets it unwrapped.
OUTAGES: tuple[type[BaseException], ...] = (
    *redis_pool.UNAVAILABLE, OperationalError, InterfaceError, psycopg_pool.PoolTimeout,
)
try:
    from billing.live import LiveStoreUnavailable
except ImportError:  # the live store that names its outages is not there yet
    pass
else:
    OUTAGES += (LiveStoreUnavailable,)

OUTAGE_RETRY_AFTER_SECONDS = 1


class GatewayError(drf.APIException):
    """An error the caller should see, already in OpenAI's terms."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message, *, code=None, param=None, status=None, error_type=None, headers=None):
        super().__init__(message)
        self.message = str(message)
        self.code = code or self.code
        self.param = param
        self.status_code = status or self.status_code
        self.error_type = error_type or self.error_type
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict:
        return {
            "error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code},
            "request_id": request_id,
        }


class InvalidRequest(GatewayError):
    pass


class InvalidApiKey(GatewayError):
    status_code = 401
    code = "invalid_api_key"

    def __init__(self, message):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="mixgateway"'})


class ModelNotFound(GatewayError):
    status_code = 404
    code = "model_not_found"

    def __init__(self, message):
        super().__init__(message, param="model")


class RequestTooLarge(GatewayError):
    status_code = 413
    code = "request_too_large"


class InsufficientQuota(GatewayError):
    status_code = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"

    def __init__(self, message):
        super().__init__(message, headers={"x-should-retry": "false"})


class ServiceUnavailable(GatewayError):
    """Redis or PostgreSQL is unreachable: nothing was sent upstream and nothing charged,
    so the caller may simply try again."""

    status_code = 503
    error_type = "api_error"
    code = "service_unavailable"

    def __init__(self, message="The gateway cannot reach its database or live store; try again shortly."):
        super().__init__(message, headers={"x-should-retry": "true",
                                           "retry-after": str(OUTAGE_RETRY_AFTER_SECONDS)})


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "api_error"
    code = "upstream_error"


class UpstreamOverloaded(UpstreamError):
    """The upstream said it is overloaded (Anthropic's 529): a failure like any other to an
    OpenAI caller, and Anthropic's own 529 overloaded_error to a Messages caller."""


class UpstreamTimeout(GatewayError):
    status_code = 504
    error_type = "api_error"
    code = "upstream_timeout"


def openai_error(error: GatewayError, request_id: str | None) -> tuple[int, dict]:
    """(status, body) in OpenAI's envelope: the table in DESIGN.md as it stands."""
    return error.status_code, error.body(request_id)


def anthropic_error_type(error: GatewayError) -> tuple[int, str]:
    """The same error in Anthropic's terms (DESIGN.md, "Agent-era surfaces"): money is 402
    billing_error, an overloaded upstream 529; every other status keeps its meaning."""
    status = error.status_code
    if error.code == "insufficient_quota":
        return 402, "billing_error"
    if isinstance(error, UpstreamOverloaded):
        return 529, "overloaded_error"
    if isinstance(error, UpstreamTimeout):
        return 504, "timeout_error"
    if status >= 500:
        return status, "api_error"
    return status, ANTHROPIC_TYPES.get(status, "invalid_request_error")


ANTHROPIC_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                   413: "request_too_large", 429: "rate_limit_error"}


def anthropic_error(error: GatewayError, request_id: str | None) -> tuple[int, dict]:
    """(status, body) in Anthropic's envelope, as its SDKs and Claude Code read it."""
    status, error_type = anthropic_error_type(error)
    return status, {"type": "error", "error": {"type": error_type, "message": error.message},
                    "request_id": request_id}


def envelope_response(error: GatewayError, request_id: str | None, response_class=HttpResponse,
                      encoding=openai_error) -> HttpResponse:
    status, body = encoding(error, request_id)
    response = response_class(encode(body), content_type="application/json", status=status)
    for name, value in error.headers.items():
        response[name] = value
    if encoding is anthropic_error:
        response["request-id"] = request_id or ""  # where Anthropic's SDKs look for it
    return response


def gateway_error(exc: BaseException, request_id: str | None) -> GatewayError:
    """Any exception, restated as what the caller is told. A failure the gateway did not
    foresee is logged here with its stack trace, and the caller sees none of it."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, OUTAGES):
        log.warning("request %s: infrastructure unavailable: %s: %s", request_id, type(exc).__name__, exc)
        return ServiceUnavailable()
    if isinstance(exc, DisallowedHost):
        return GatewayError("Invalid Host header.", code="invalid_host")
    if isinstance(exc, drf.MethodNotAllowed):
        return GatewayError(exc.detail, code="method_not_allowed", status=405)
    if isinstance(exc, (Http404, drf.NotFound)):
        return GatewayError("Unknown request URL.", code="unknown_url", status=404)
    if isinstance(exc, drf.APIException):
        return GatewayError(str(exc.detail), code=exc.default_code, status=exc.status_code)
    log.error("unhandled error on request %s", request_id, exc_info=exc)
    return GatewayError("The gateway failed to handle this request.", code="internal_error",
                        status=500, error_type="api_error")


def refusal_response(exc: BaseException, request_id: str | None, encoding=openai_error) -> HttpResponse:
    """The answer to a request refused before it was admitted (bad key, body, model,
    limits, balance, an outage), counted as refused; an admitted request is counted when
    it settles (gateway.pipeline)."""
    error = gateway_error(exc, request_id)
    request_refused(error.code)
    return envelope_response(error, request_id, encoding=encoding)


def exception_handler(exc, context):
    """DRF's hook: the same envelope as every other door."""
    return refusal_response(exc, getattr(context.get("request"), "request_id", None))


def anthropic_exception_handler(exc, context):
    """DRF's hook for the Messages views: the same errors in Anthropic's envelope."""
    return refusal_response(exc, getattr(context.get("request"), "request_id", None), anthropic_error)


class JsonOnlyNegotiation(BaseContentNegotiation):
    """The API answers JSON (or SSE, written by hand) whatever the Accept header says;
    an SSE client sending Accept: text/event-stream must not get 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
