from django.shortcuts import render
from django.urls import path

from console.access import org_view


@org_view()
def index(request):
    return render(request, "console/placeholder.html", {"title": "Dashboard"})


urlpatterns = [path("dashboard/", index, name="dashboard")]
