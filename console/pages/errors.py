"""The pages Django shows when a view refuses (403), finds nothing (404) or crashes (500):
in the console's layout for people, and in the API's JSON envelope for programs on /v1 and
/api, which must never get HTML."""

from django.views import defaults

from gateway.api.errors import GatewayError, envelope_response
from gateway.api.views import server_error as api_server_error

API_PREFIXES = ("/v1/", "/api/")


def _for_a_program(request) -> bool:
    return request.path.startswith(API_PREFIXES)


def _envelope(request, message: str, code: str, status: int):
    error = GatewayError(message, code=code, status=status)
    return envelope_response(error, getattr(request, "request_id", None))


def permission_denied(request, exception):
    if _for_a_program(request):
        return _envelope(request, "This credential may not do that.", "permission_denied", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if _for_a_program(request):
        return _envelope(request, f"Unknown request URL: {request.method} {request.path}.", "unknown_url", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _for_a_program(request):
        return api_server_error(request)
    return defaults.server_error(request)
