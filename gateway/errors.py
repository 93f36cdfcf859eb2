"""OpenAI's error envelope, with our request id, for every failure on /v1."""

import logging

from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from .encoding import encode
from .observability import request_refused

log = logging.getLogger(__name__)


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


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "api_error"
    code = "upstream_error"


class UpstreamTimeout(GatewayError):
    status_code = 504
    error_type = "api_error"
    code = "upstream_timeout"


def envelope_response(error: GatewayError, request_id: str | None) -> HttpResponse:
    """The envelope as a plain Django response, for answers made outside DRF (the hot
    path, the header guard, the playground)."""
    response = HttpResponse(encode(error.body(request_id)), content_type="application/json",
                            status=error.status_code)
    for name, value in error.headers.items():
        response[name] = value
    return response


def error_response(error: GatewayError, request_id: str | None) -> Response:
    return Response(error.body(request_id), status=error.status_code, headers=error.headers)


def as_gateway_error(exc: Exception) -> GatewayError | None:
    """DRF's and Django's own exceptions, restated in our envelope."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, drf.MethodNotAllowed):
        return GatewayError(exc.detail, code="method_not_allowed", status=405)
    if isinstance(exc, (Http404, drf.NotFound)):
        return GatewayError("Unknown request URL.", code="unknown_url", status=404)
    if isinstance(exc, drf.Throttled):
        return GatewayError(exc.detail, code="rate_limit_exceeded", status=429, error_type="requests")
    if isinstance(exc, drf.APIException):
        return GatewayError(str(exc.detail), code=exc.default_code, status=exc.status_code)
    return None


def exception_handler(exc, context):
    request = context.get("request")
    request_id = getattr(request, "request_id", None)
    error = as_gateway_error(exc)
    if error is not None and not getattr(exc, "metered", False):
        request_refused(error.code)  # metered requests were counted when they settled
    if error is None:
        # Never show the caller a stack trace; the log has it, under the same request id.
        log.exception("unhandled error on request %s", request_id)
        error = GatewayError("The gateway failed to handle this request.", code="internal_error",
                             status=500, error_type="api_error")
    return error_response(error, request_id)


class JsonOnlyNegotiation(BaseContentNegotiation):
    """The API answers JSON (or SSE, written by hand) whatever the Accept header says;
    an SSE client sending Accept: text/event-stream must not get 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
