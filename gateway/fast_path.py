"""The hot endpoints without the console's machinery.

`POST /v1/chat/completions` and `POST /v1/embeddings` carry nearly all of a gateway's
traffic, and none of them needs sessions, CSRF, users, messages, allauth, static files or
DRF's negotiation. Measured on the benchmark, that stack cost more than the rest of the
request path together, so the first middleware sends these two requests straight to
`serve_chat` / `serve_embeddings`. Everything the stack did that the API needs is done
here, in the same words: the request id, the Authorization size guard, the host check,
bearer authentication, and the error envelope. Every other method and path (and the
OpenAPI schema) still goes through Django and DRF (gateway.views).
"""

import logging
import uuid

from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.db import close_old_connections

from .auth import key_from_authorization
from .errors import GatewayError, as_gateway_error, envelope_response
from .middleware import check_authorization_size
from .observability import request_refused
from .views import serve_chat, serve_embeddings

log = logging.getLogger("gateway.errors")

HOT_ENDPOINTS = {
    "/v1/chat/completions": serve_chat,
    "/v1/embeddings": serve_embeddings,
}


def serve_hot(request, serve) -> HttpResponse:
    request.request_id = request_id = str(uuid.uuid4())
    try:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it for every other page
        check_authorization_size(request)
        key = key_from_authorization(request.META.get("HTTP_AUTHORIZATION", ""))
        response = serve(request, key)
        # A cold key or account was read from the database: give the connection back to
        # the pool now, not when a stream ends minutes later (a no-op on a warm request,
        # and with persistent connections outside gevent).
        close_old_connections()
    except DisallowedHost:
        response = envelope_response(GatewayError("Invalid Host header.", code="invalid_host"), request_id)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the envelope, as DRF's handler does
        error = as_gateway_error(exc)
        if error is None:
            log.exception("unhandled error on request %s", request_id)
            error = GatewayError("The gateway failed to handle this request.", code="internal_error",
                                 status=500, error_type="api_error")
        elif not getattr(exc, "metered", False):
            request_refused(error.code)  # metered requests were counted when they settled
        response = envelope_response(error, request_id)
    response["x-request-id"] = request_id
    response["X-Content-Type-Options"] = "nosniff"
    return response


class HotPathMiddleware:
    """First in MIDDLEWARE: answers the hot endpoints itself, so the rest of the chain
    (and URL resolution) runs only for everything else. Being a middleware rather than a
    WSGI wrapper, it serves the test server and the test client exactly as it serves
    gunicorn."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        serve = HOT_ENDPOINTS.get(request.path_info) if request.method == "POST" else None
        if serve is None:
            return self.get_response(request)
        return serve_hot(request, serve)
