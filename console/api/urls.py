from django.urls import include, path, re_path

from . import keys, openapi, operators, organization, usage
from .errors import unknown_endpoint

v1 = [
    path("organization", organization.OrganizationView.as_view()),
    path("keys", keys.KeyListView.as_view()),
    path("keys/<int:pk>", keys.KeyDetailView.as_view()),
    path("usage", usage.UsageListView.as_view()),
    path("usage/summary", usage.UsageSummaryView.as_view()),
    path("ledger", usage.LedgerView.as_view()),
    path("admin/organizations", operators.OperatorOrganizationsView.as_view()),
    path("admin/organizations/<str:slug>/credits", operators.OperatorCreditsView.as_view()),
    path("openapi.json", openapi.SchemaView.as_view(), name="management_api_schema"),
    re_path(r"^.*$", unknown_endpoint),  # the envelope, not Django's HTML 404
]

urlpatterns = [
    path("v1/", include(v1)),
]
