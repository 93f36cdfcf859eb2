from django.shortcuts import redirect, render
from django.urls import path
from django.views.defaults import server_error as html_server_error

from gateway.views import server_error as api_server_error


def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "console/landing.html")


def server_error(request):
    if request.path.startswith("/v1/"):
        return api_server_error(request)
    return html_server_error(request)


urlpatterns = [path("", home, name="home")]
