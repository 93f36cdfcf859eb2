"""The playground: chat with any enabled model from the console, through the real gateway
request path and billed like any request, with no secret key in the browser.

The page posts {"model", "messages"} to `playground_chat`, a session-authenticated,
CSRF-protected endpoint that calls the gateway's pipeline in-process with the chat
surface and the organization's playground key, exactly as /v1/chat/completions does."""

from django.conf import settings
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_POST

from console.pages.common import org_view
from gateway import pipeline
from gateway.chat_request import read_json_object
from gateway.errors import refusal_response
from gateway.keys import playground_key
from gateway.queries import enabled_models
from gateway.surfaces.chat import CHAT

PREFERRED_MODEL = "demo:echo"


@org_view()
def index(request):
    models = [m.public_id for m in enabled_models()]
    selected = PREFERRED_MODEL if PREFERRED_MODEL in models else (models[0] if models else None)
    return render(request, "console/playground/index.html",
                  {"title": "Playground", "models": models, "selected": selected})


def playground_body(body: dict) -> dict:
    """Only the model and the conversation come from the browser; the answer always
    streams. The pipeline checks both exactly as /v1 does."""
    return {"model": body.get("model"), "messages": body.get("messages"), "stream": True}


@org_view()
@require_POST
def chat(request):
    try:
        key = playground_key(request.org, request.user)
        body = playground_body(read_json_object(request, settings.GATEWAY_MAX_BODY_BYTES))
        return pipeline.serve(CHAT, request, key, body)
    except Exception as exc:  # noqa: BLE001 - the page shows the same envelope as /v1
        return refusal_response(exc, request.request_id)


urlpatterns = [
    path("playground/", index, name="playground"),
    path("playground/chat/", chat, name="playground_chat"),
]
