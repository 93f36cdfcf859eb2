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


LISTED_FIRST = [AVAILABLE, COOLING_DOWN, NOT_CONFIGURED, DISABLED]


@org_view()
def index(request):
    rows = [
        {
            "public_id": m.public_id,
            "surface": "Chat" if serves_chat(m) else "Embeddings",
            "availability": model_availability(m),
            "input": _price(m.input_per_mtok),
            "output": _price(m.output_per_mtok),
            "cached": _price(m.cached_input_per_mtok),
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
