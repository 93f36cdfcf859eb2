from django.contrib import admin
from django.urls import include, path

from gateway import observability

from .pages import (
    alerts, api_docs, audit, billing, billing_statements, dashboard, errors, home, keys, members, models, organizations,
    playground, quickstart, responses, signup, usage,
)

urlpatterns = [
    path("v1/", include("gateway.api.urls")),
    path("api/", include("console.api.urls")),  # the management API, /api/v1
    path("healthz", observability.healthz),
    path("readyz", observability.readyz),
    path("metrics", observability.metrics_view),
    path("admin/", admin.site.urls),
    *signup.urlpatterns,
    path("accounts/", include("allauth.urls")),
    path("billing/stripe/", include("billing.urls")),
    *home.urlpatterns,
    *dashboard.urlpatterns,
    *keys.urlpatterns,
    *usage.urlpatterns,
    *billing.urlpatterns,
    *billing_statements.urlpatterns,
    *alerts.urlpatterns,
    *models.urlpatterns,
    *quickstart.urlpatterns,
    *playground.urlpatterns,
    *responses.urlpatterns,
    *members.urlpatterns,
    *organizations.urlpatterns,
    *audit.urlpatterns,
    *api_docs.urlpatterns,
]

# In the layout for people, in the JSON envelope on /v1 and /api (console.pages.errors).
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
