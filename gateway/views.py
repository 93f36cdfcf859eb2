"""The /v1 API. The chat request path reads top to bottom here: authenticate, check the
body, resolve the model, call the upstream, relay, meter."""

import logging

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from billing.money import usd

from . import openapi
from .adapters import Usage, adapter_for
from .auth import ApiKeyAuthentication
from .catalog import models_for_key, resolve_route
from .chat_request import parse_chat_request, read_json_object
from .embeddings import parse_embedding_request
from .encoding import encode
from .errors import GatewayError, UpstreamError
from .keys import KeyIdentity
from .metering import Meter, cost_of
from .models import CatalogModel
from .relay import relay, sse_response
from .resilience import call_with_failover, candidates

log = logging.getLogger(__name__)


def json_response(payload: dict, status: int = 200, usage_cost=None) -> HttpResponse:
    return HttpResponse(encode(payload, usage_cost), content_type="application/json", status=status)


class GatewayView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = []


def serve_chat(request, key: KeyIdentity, body: dict | None = None) -> HttpResponse:
    """The chat request path for an authenticated key: check the body, resolve the model,
    reserve, call the upstream, relay, settle. `body` is the request's JSON body unless the
    caller (the console playground) has already read and shaped it. Failures before the
    first byte raise GatewayError for the caller to put in the envelope."""
    if body is None:
        body = read_json_object(request, settings.GATEWAY_MAX_BODY_BYTES)
    chat = parse_chat_request(body)
    route = resolve_route(chat.model, key)
    chain = candidates(route, key)
    meter = Meter(request.request_id, key, route, chat)
    limit_headers = meter.admit(chain)
    if chat.stream:
        served, (first, chunks) = _call_upstream(meter, chain, lambda candidate: _open_stream(candidate, chat))
        response = sse_response(relay(first, chunks, meter, request.request_id))
        return _with_headers(response, served, limit_headers)
    served, completion = _call_upstream(meter, chain,
                                        lambda candidate: adapter_for(candidate).complete(candidate, chat))
    usage = completion.usage
    if usage is None:
        usage = Usage(meter.estimated_usage("estimated").prompt_tokens,
                      _completion_tokens_estimate(meter, completion.body), basis="estimated")
    return _answer(meter, served, completion.body, usage, limit_headers)


def serve_embeddings(request, key: KeyIdentity) -> HttpResponse:
    """POST /v1/embeddings: the same path as a non-streamed chat, billed on input tokens."""
    embedding = parse_embedding_request(read_json_object(request, settings.GATEWAY_MAX_BODY_BYTES))
    route = resolve_route(embedding.model, key)
    chain = candidates(route, key)
    meter = Meter(request.request_id, key, route, embedding)
    limit_headers = meter.admit(chain)
    served, result = _call_upstream(meter, chain, lambda candidate: adapter_for(candidate).embed(candidate, embedding))
    usage = result.usage or Usage(embedding.prompt_estimate(), 0, basis="estimated")
    return _answer(meter, served, result.body, usage, limit_headers)


def _call_upstream(meter: Meter, chain, call):
    """Fail over along the chain; a request that gets no answer is settled (at no cost)
    before its error goes to the caller."""
    try:
        served, result = call_with_failover(chain, call)
    except GatewayError as e:
        meter.finish("upstream_error", None, http_status=e.status_code, error_code=e.code)
        e.metered = True  # counted when settled; the exception handler must not count it again
        raise
    except BaseException:
        meter.finish("error", None, http_status=500, error_code="internal_error")
        raise
    meter.served_by(served)
    return served, result


def _answer(meter: Meter, served, body: dict, usage: Usage, limit_headers: dict) -> HttpResponse:
    """A non-streamed answer with the caller's model name, usage and cost. It settles once
    the server has sent it (a Redis round trip and the log line off the caller's clock),
    as a stream settles after its last event."""
    meter.first_byte()
    if meter.completion_text is not None:
        for choice in body.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                meter.keep_text(message["content"])
    if not isinstance(body.get("usage"), dict) or usage.basis != "provider":
        body["usage"] = usage.as_openai()
    body["model"] = meter.chat.model
    cost = cost_of(usage, meter.route)  # what settling will charge, to the picodollar
    response = json_response(body, usage_cost=cost)
    response["x-mixgateway-cost-usd"] = usd(cost)
    if meter.booked_balance is not None:
        response["x-mixgateway-balance-usd"] = usd(meter.booked_balance - cost)
    response._resource_closers.append(lambda: _settle_answered(meter, usage))
    return _with_headers(response, served, limit_headers)


def _settle_answered(meter: Meter, usage: Usage) -> None:
    # Django swallows a closer's exception; a failed settlement must at least be seen.
    try:
        meter.finish("completed", usage)
    except Exception:
        log.exception("could not settle request %s after answering it", meter.request_id)


def _open_stream(route, chat):
    chunks = adapter_for(route).stream(route, chat)
    # Wait for the first chunk before answering 200: an upstream that fails at once can
    # still be failed over, or give the caller a proper error status.
    first = next(chunks, None)
    if first is None:
        raise UpstreamError(f"The upstream provider '{route.provider}' sent an empty stream.")
    return first, chunks


def _with_headers(response: HttpResponse, served, limit_headers: dict) -> HttpResponse:
    response["x-mixgateway-served-by"] = served.public_id
    for name, value in limit_headers.items():
        response[name] = value
    return response


class ChatCompletionsView(GatewayView):
    @openapi.chat_completions
    def post(self, request):
        return serve_chat(request, request.auth)


class EmbeddingsView(GatewayView):
    @openapi.embeddings
    def post(self, request):
        return serve_embeddings(request, request.auth)


def _completion_tokens_estimate(meter: Meter, body: dict) -> int:
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            meter.count_relayed(message["content"])
    return meter.relayed_completion_tokens


def _model_object(model) -> dict:
    return {
        "id": model.public_id,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": model.provider.slug,
    }


class ModelListView(GatewayView):
    @openapi.model_list
    def get(self, request):
        models = models_for_key(request.auth)
        return json_response({"object": "list", "data": [_model_object(m) for m in models]})


class ModelDetailView(GatewayView):
    @openapi.model_detail
    def get(self, request, model_id: str):
        route = resolve_route(model_id, request.auth)
        model = CatalogModel.objects.select_related("provider").get(pk=route.model_id)
        return json_response(_model_object(model))


@csrf_exempt  # API callers have no CSRF token; they get the 404 envelope like anyone
def unknown_endpoint(request, *args, **kwargs):
    error = GatewayError(f"Unknown request URL: {request.method} {request.path}.", code="unknown_url", status=404)
    return json_response(error.body(request.request_id), status=404)


def server_error(request):
    """Django's last resort for a crash outside DRF: still our envelope on /v1."""
    error = GatewayError("The gateway failed to handle this request.", code="internal_error",
                         status=500, error_type="api_error")
    return json_response(error.body(getattr(request, "request_id", None)), status=500)
