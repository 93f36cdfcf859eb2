"""Every failure of the management API as OpenAI's envelope plus the request id, like /v1."""

import math

from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf

from rest_framework.response import Response

from gateway.api.errors import GatewayError, envelope_response, gateway_error


class NotFound(GatewayError):
    """An object that is not this organization's, or does not exist: the same answer."""

    status_code = 404
    code = "not_found"


def unknown_url(request_path: str = "") -> GatewayError:
    return GatewayError(f"Unknown request URL: {request_path}".strip(), code="unknown_url", status=404)


@csrf_exempt  # bearer credentials, never cookies: a PATCH to a bad URL is a 404 envelope, not CSRF's 403 page
def unknown_endpoint(request, *args, **kwargs):
    return envelope_response(unknown_url(f"{request.method} {request.path}."), request.request_id)


def invalid(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(message, code=code, param=param)


def _first_problem(detail, path=()):
    """The first (field path, ErrorDetail) in DRF's nested validation detail."""
    if isinstance(detail, dict):
        for name, inner in detail.items():
            return _first_problem(inner, path if name == "non_field_errors" else (*path, str(name)))
    if isinstance(detail, list) and detail:
        if all(not isinstance(item, (dict, list)) for item in detail):
            return path, detail[0]
        for index, inner in enumerate(detail):
            if inner:
                return _first_problem(inner, (*path, str(index)))
    return path, detail


def from_validation_error(exc: drf.ValidationError) -> GatewayError:
    path, problem = _first_problem(exc.detail)
    param = ".".join(path) or None
    code = "missing_required_parameter" if getattr(problem, "code", "") == "required" else "invalid_value"
    if getattr(problem, "code", "") == "unknown_parameter":
        code = "unknown_parameter"
    message = f"Invalid '{param}': {problem}" if param else str(problem)
    return GatewayError(message, code=code, param=param)


def api_error(exc: Exception, request_id: str | None) -> GatewayError:
    if isinstance(exc, drf.ValidationError):
        return from_validation_error(exc)
    if isinstance(exc, drf.ParseError):
        return GatewayError("Request body is not valid JSON.", code="invalid_json")
    if isinstance(exc, drf.Throttled):
        wait = math.ceil(exc.wait or 1)
        return GatewayError(f"Rate limit reached for this management key; retry in {wait} s.",
                            code="rate_limit_exceeded", status=429, error_type="requests",
                            headers={"retry-after": str(wait)})
    # The rest as on /v1: outages 503, never a stack trace to the caller (it is logged).
    return gateway_error(exc, request_id)


def exception_handler(exc, context):
    request_id = getattr(context.get("request"), "request_id", None)
    error = api_error(exc, request_id)
    return Response(error.body(request_id), status=error.status_code, headers=error.headers)
