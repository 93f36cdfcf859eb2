"""The /v1 entry: API requests skip the console's middleware.

The console needs sessions, CSRF, users, messages, allauth, static files and a
Content-Security-Policy; no /v1 request does, and on the benchmark that stack cost more
than the rest of the request path together. So the first middleware hands every /v1
request straight to its view in gateway.api.urls (lean DRF views: bearer authentication and
nothing else). What the stack did that the API needs is done here: the request id, the
host check and nosniff. Every other path goes on through the whole chain.
"""

import uuid

from django.urls import URLResolver
from django.urls.resolvers import RegexPattern

from .errors import refusal_response

API_PREFIX = "/v1/"
_api_urls = URLResolver(RegexPattern(r"^/v1/"), "gateway.api.urls")
# The inference endpoints' fixed paths, found by one dictionary lookup: resolving builds two
# ResolverMatch objects a request, which nothing on these paths reads.
HOT_PATHS = ("chat/completions", "embeddings", "responses", "messages", "messages/count_tokens")
_hot_views = None


def _hot_view(path: str):
    global _hot_views
    if _hot_views is None:
        _hot_views = {API_PREFIX + route: _api_urls.resolve(API_PREFIX + route).func for route in HOT_PATHS}
    return _hot_views.get(path)


class ApiEntryMiddleware:
    """First in MIDDLEWARE. Being a middleware rather than a WSGI wrapper, it serves the
    test server and the test client exactly as it serves gunicorn."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        # Always ours: a caller-chosen id could collide with another request's charge.
        request.request_id = request_id = str(uuid.uuid4())
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it for every other page
            view = _hot_view(request.path_info)
            if view is not None:
                response = view(request)
            else:
                match = _api_urls.resolve(request.path_info)  # gateway.api.urls ends in a catch-all
                request.resolver_match = match
                response = match.func(request, *match.args, **match.kwargs)
            if callable(getattr(response, "render", None)):  # DRF's Response (the schema), as Django would
                response = response.render()
        except Exception as exc:  # noqa: BLE001 - every failure becomes the envelope
            response = refusal_response(exc, request_id)
        response["x-request-id"] = request_id
        response["X-Content-Type-Options"] = "nosniff"
        return response
