from django.shortcuts import render
from django.views.defaults import server_error as html_server_error

from gateway.views import server_error as api_server_error


def home(request):
    return render(request, "home.html")


def server_error(request):
    if request.path.startswith("/v1/"):
        return api_server_error(request)
    return html_server_error(request)
