"""The playground: chat with any chat model of the catalog from the console, through the
real gateway request path and billed like any request, with no secret key in the browser.

The page posts {"model", "messages", "temperature", "max_tokens"} to `playground_chat`, a
session-authenticated, CSRF-protected endpoint that calls the gateway's pipeline in-process
with the chat surface and the organization's playground key, exactly as
/v1/chat/completions does. Models that cannot answer are offered disabled, with the reason."""

from django.conf import settings
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_POST

from console.pages.common import org_view
from gateway import pipeline
from gateway.routing.availability import NOT_CONFIGURED, model_availability, serves_chat
from gateway.routing.catalog import lookup_route
from gateway.parsing.chat_request import read_json_object
from gateway.api.errors import UpstreamError, refusal_response
from gateway.keys.api_keys import playground_key
from gateway.queries import enabled_models
from gateway.surfaces.chat import CHAT

PREFERRED_MODEL = "demo:echo"
# What the browser may set besides the conversation; the pipeline checks them as /v1 does.
SETTINGS_FROM_BROWSER = ("temperature", "max_tokens")


@org_view()
def index(request):
    models = [
        {"public_id": m.public_id, "availability": model_availability(m)}
        for m in enabled_models().order_by("provider__slug", "name") if serves_chat(m)
    ]
    usable = [m["public_id"] for m in models if m["availability"].usable]
    selected = PREFERRED_MODEL if PREFERRED_MODEL in usable else (usable[0] if usable else None)
    return render(request, "console/playground/index.html",
                  {"title": "Playground", "models": models, "selected": selected})


def playground_body(body: dict) -> dict:
    """The model, the conversation and the two settings the page has come from the
    browser; the answer always streams."""
    chosen = {name: body[name] for name in SETTINGS_FROM_BROWSER if body.get(name) is not None}
    return {"model": body.get("model"), "messages": body.get("messages"), **chosen, "stream": True}


def refuse_unconfigured(public_id) -> None:
    """Say why a model whose provider has no key cannot answer, before the gateway spends
    retries on it."""
    if not isinstance(public_id, str) or not public_id.isprintable() or not 0 < len(public_id) <= 300:
        return  # the pipeline explains what is wrong with the name
    route = lookup_route(public_id)
    if route is not None and (availability := model_availability(route)).status == NOT_CONFIGURED:
        raise UpstreamError(availability.reason)


@org_view()
@require_POST
def chat(request):
    try:
        key = playground_key(request.org, request.user)
        body = playground_body(read_json_object(request, settings.GATEWAY_MAX_BODY_BYTES))
        refuse_unconfigured(body["model"])
        return pipeline.serve(CHAT, request, key, body)
    except Exception as exc:  # noqa: BLE001 - the page shows the same envelope as /v1
        return refusal_response(exc, request.request_id)


urlpatterns = [
    path("playground/", index, name="playground"),
    path("playground/chat/", chat, name="playground_chat"),
]
