"""The /v1 API's views: one lean DRF view per endpoint, reached through gateway.api.entry.

Chat and embeddings are gateway.pipeline's, with their surface; the views only
authenticate (DRF, ApiKeyAuthentication) and say which surface they serve.
"""

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from . import openapi
from .. import pipeline
from .auth import AnthropicKeyAuthentication, ApiKeyAuthentication
from ..routing.availability import NOT_CONFIGURED, model_availability
from ..routing.catalog import models_for_key, resolve_route
from ..parsing.encoding import encode
from .errors import GatewayError, anthropic_exception_handler, envelope_response
from ..models import CatalogModel
from ..surfaces.chat import CHAT
from ..surfaces.embeddings import EMBEDDINGS
from ..surfaces.messages import MESSAGES, count_tokens


def json_response(payload: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(encode(payload), content_type="application/json", status=status)


class ApiView(APIView):
    """DRF with only what this API uses: bearer-key authentication. No sessions, no
    permissions or throttles (limits are the key's, checked at admission), no parsers
    (the pipeline reads the body, after authentication), no negotiation (answers are JSON
    or an event stream, and errors are gateway.api.errors' envelope). The pipeline is given
    Django's own request (`request._request`): DRF's wrapper finds each attribute it does
    not define through `__getattr__` after a failed lookup, a microsecond or two each, and
    the pipeline reads nothing DRF adds."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = []
    throttle_classes = []
    parser_classes = []

    def initial(self, request, *args, **kwargs):
        # DRF's own also negotiates, versions, checks permissions and throttles: none here.
        self.perform_authentication(request)

    @property
    def default_response_headers(self):
        # DRF puts "Allow" (a scan of the view's methods) and "Vary: Accept" on every answer;
        # nothing here is negotiated, and only a 405 needs to say what is allowed.
        return {}

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 405:
            response["Allow"] = ", ".join(self.allowed_methods)
        return response


class ChatCompletionsView(ApiView):
    @openapi.chat_completions
    def post(self, request):
        return pipeline.serve(CHAT, request._request, request.auth)


class EmbeddingsView(ApiView):
    @openapi.embeddings
    def post(self, request):
        return pipeline.serve(EMBEDDINGS, request._request, request.auth)


class AnthropicApiView(ApiView):
    """Anthropic's API as its SDKs and Claude Code call it: the key in x-api-key or as a
    bearer token, every error in Anthropic's envelope, the request id where they read it.
    Left out of /v1/openapi.json: the contract is Anthropic's published API."""

    authentication_classes = [AnthropicKeyAuthentication]
    schema = None

    def get_exception_handler(self):
        return anthropic_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["request-id"] = request.request_id
        return response


class MessagesView(AnthropicApiView):
    def post(self, request):
        return pipeline.serve(MESSAGES, request._request, request.auth)


class CountTokensView(AnthropicApiView):
    def post(self, request):
        return count_tokens(request._request, request.auth)


def _model_object(model) -> dict:
    return {
        "id": model.public_id,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": model.provider.slug,
    }


class ModelListView(ApiView):
    @openapi.model_list
    def get(self, request):
        # A model whose provider has no key can only answer 502: callers are not offered it.
        models = [m for m in models_for_key(request.auth) if model_availability(m).status != NOT_CONFIGURED]
        return json_response({"object": "list", "data": [_model_object(m) for m in models]})


class ModelDetailView(ApiView):
    @openapi.model_detail
    def get(self, request, model_id: str):
        route = resolve_route(model_id, request.auth)
        model = CatalogModel.objects.select_related("provider").get(pk=route.model_id)
        return json_response(_model_object(model))


@csrf_exempt  # API callers have no CSRF token; they get the 404 envelope like anyone
def unknown_endpoint(request, *args, **kwargs):
    error = GatewayError(f"Unknown request URL: {request.method} {request.path}.", code="unknown_url", status=404)
    return envelope_response(error, request.request_id)


def server_error(request):
    """Django's last resort, should the entry itself fail: still our envelope on /v1."""
    error = GatewayError("The gateway failed to handle this request.", code="internal_error",
                         status=500, error_type="api_error")
    return envelope_response(error, getattr(request, "request_id", None))
