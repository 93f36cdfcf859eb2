from django.shortcuts import redirect, render
from django.urls import path


def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "console/landing.html")


urlpatterns = [path("", home, name="home")]
