"""The quickstart: the README's examples, filled in with this gateway's address and a hint
of the organization's newest key (its display prefix only; secrets are never stored)."""

from django.conf import settings
from django.shortcuts import render
from django.urls import path

from console.pages.common import org_view
from gateway.queries import enabled_models, newest_active_key

EXAMPLE_MODEL = "demo:echo"


def gateway_base_url(request) -> str:
    """The /v1 base URL callers use: PUBLIC_BASE_URL (with or without its /v1) when set,
    else this request's own scheme and host."""
    configured = settings.PUBLIC_BASE_URL.rstrip("/")
    if not configured:
        return request.build_absolute_uri("/v1")
    return configured if configured.endswith("/v1") else f"{configured}/v1"


def example_model() -> str:
    ids = [m.public_id for m in enabled_models()]
    if EXAMPLE_MODEL in ids or not ids:
        return EXAMPLE_MODEL
    return ids[0]


@org_view()
def index(request):
    key = newest_active_key(request.org)
    return render(request, "console/quickstart/index.html", {
        "title": "Quickstart",
        "base_url": gateway_base_url(request),
        "key": key,
        "key_hint": f"{key.prefix}..." if key else "sk-...",
        "model": example_model(),
    })


urlpatterns = [path("quickstart/", index, name="quickstart")]
