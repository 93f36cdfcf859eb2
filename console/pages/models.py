"""The models page: what callers can name in `model`, what each costs, and whether it can
answer now (a model whose provider has no key is listed, marked, and says why)."""

from django.shortcuts import render
from django.urls import path

from billing.money import usd
from console.pages.common import org_view
from gateway.routing.availability import (
    AVAILABLE,
    COOLING_DOWN,
    DISABLED,
    NOT_CONFIGURED,
    model_availability,
    serves_chat,
)
from gateway.queries import catalog_models


def _price(value):
    return None if value is None else usd(value)


# Which /v1 endpoints take a model: every chat model answers the three chat-shaped surfaces
# (one internal request under each), an embedding model only embeddings.
CHAT_SURFACES = [("Chat", "/v1/chat/completions"), ("Responses", "/v1/responses"), ("Messages", "/v1/messages")]
EMBEDDING_SURFACES = [("Embeddings", "/v1/embeddings")]


LISTED_FIRST = [AVAILABLE, COOLING_DOWN, NOT_CONFIGURED, DISABLED]


@org_view()
def index(request):
    rows = [
        {
            "public_id": m.public_id,
            "surface": "Chat" if serves_chat(m) else "Embeddings",
            "surfaces": CHAT_SURFACES if serves_chat(m) else EMBEDDING_SURFACES,
            "availability": model_availability(m),
            "input": _price(m.input_per_mtok),
            "output": _price(m.output_per_mtok),
            "cached": _price(m.cached_input_per_mtok),
            # Unset, a cache write is charged at the input price (billing.charging.cost_of).
            "cache_write": _price(m.cache_write_per_mtok),
            "max_output_tokens": m.max_output_tokens,
            "context_window": m.context_window,
        }
        for m in catalog_models()
    ]
    rows.sort(key=lambda row: LISTED_FIRST.index(row["availability"].status))  # stable: catalog order within
    return render(request, "console/models/index.html", {
        "title": "Models", "models": rows, "usable": sum(row["availability"].usable for row in rows),
    })


urlpatterns = [path("models/", index, name="models")]
