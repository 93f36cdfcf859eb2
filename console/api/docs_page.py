"""The console's page about the management API: where it is, how to get a key, a first call."""

from django.shortcuts import render

from console.access import org_view


@org_view()
def index(request):
    return render(request, "console/api/docs.html", {
        "title": "Management API",
        "api_base": request.build_absolute_uri("/api/v1"),
    })
