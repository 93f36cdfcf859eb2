"""The models page: what callers can name in `model`, and what each costs."""

from django.shortcuts import render
from django.urls import path

from billing.money import usd
from console.pages.common import org_view
from gateway.queries import enabled_models


def _price(value):
    return None if value is None else usd(value)


@org_view()
def index(request):
    rows = [
        {
            "public_id": m.public_id,
            "input": _price(m.input_per_mtok),
            "output": _price(m.output_per_mtok),
            "cached": _price(m.cached_input_per_mtok),
            "max_output_tokens": m.max_output_tokens,
            "context_window": m.context_window,
        }
        for m in enabled_models()
    ]
    return render(request, "console/models/index.html", {"title": "Models", "models": rows})


urlpatterns = [path("models/", index, name="models")]
