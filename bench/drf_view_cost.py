"""CPU the lean DRF view (gateway.api.views.ApiView) adds around a handler, against calling
the handler directly: the measurement behind /v1 having one door (docs/performance.md).

    SECRET_KEY=... .venv/bin/python bench/drf_view_cost.py   (no database or Redis needed)
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from gateway.api import views  # noqa: E402
from gateway.api.auth import ApiKeyAuthentication  # noqa: E402

CALLS = 20_000


class KnownKey(ApiKeyAuthentication):
    def authenticate(self, request):
        return (None, "key")  # the key lookup is the pipeline's cost, not DRF's


def handler(request, key):
    return HttpResponse(b"{}", content_type="application/json")


class View(views.ApiView):
    authentication_classes = [KnownKey]

    def post(self, request):
        return handler(request, request.auth)


def cpu_per_call(call) -> float:
    factory = RequestFactory()
    requests = [factory.post("/v1/chat/completions", b"{}", content_type="application/json") for _ in range(CALLS)]
    started = time.process_time()
    for request in requests:
        call(request)
    return (time.process_time() - started) / CALLS * 1e6


view = View.as_view()
direct = min(cpu_per_call(lambda request: handler(request, "key")) for _ in range(5))
through_drf = min(cpu_per_call(view) for _ in range(5))
print(f"handler alone {direct:.1f} us, through the lean DRF view {through_drf:.1f} us: "
      f"DRF adds {through_drf - direct:.1f} us CPU per request")
