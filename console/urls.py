from django.contrib import admin
from django.urls import include, path

from gateway import observability

from .pages import (
    api_docs, audit, billing, billing_statements, dashboard, home, keys, members, models, organizations, playground,
    quickstart, usage,
)

urlpatterns = [
    path("v1/", include("gateway.urls")),
    path("api/", include("console.api.urls")),  # the management API, /api/v1
    path("healthz", observability.healthz),
    path("readyz", observability.readyz),
    path("metrics", observability.metrics_view),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("billing/stripe/", include("billing.urls")),
    *home.urlpatterns,
    *dashboard.urlpatterns,
    *keys.urlpatterns,
    *usage.urlpatterns,
    *billing.urlpatterns,
    *billing_statements.urlpatterns,
    *models.urlpatterns,
    *quickstart.urlpatterns,
    *playground.urlpatterns,
    *members.urlpatterns,
    *organizations.urlpatterns,
    *audit.urlpatterns,
    *api_docs.urlpatterns,
]

handler500 = "console.pages.home.server_error"
