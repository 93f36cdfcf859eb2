from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("v1/", include("gateway.urls")),
    path("admin/", admin.site.urls),
]

handler500 = "console.views.server_error"
