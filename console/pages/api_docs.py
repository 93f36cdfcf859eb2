"""The console's page about the management API: where it is, how to get a key, a first call."""

from django.shortcuts import render
from django.urls import path

from console.pages.common import org_view


@org_view()
def index(request):
    return render(request, "console/api/docs.html", {
        "title": "Management API",
        "api_base": request.build_absolute_uri("/api/v1"),
    })


urlpatterns = [
    path("api/", index, name="management_api_docs"),
]
