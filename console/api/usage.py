"""/api/v1/usage, /usage/summary and /ledger: what the organization's requests cost, as
booked (a request shows here once reconciliation has booked it, within seconds)."""

from datetime import timezone as dt_timezone

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from billing.models import UsageRecord
from billing.queries import ledger_of, usage_of

from .base import ManagementView
from .pagination import NewestFirst
from .serializers import (
    LedgerEntrySerializer,
    PageFilterSerializer,
    UsageFilterSerializer,
    UsageSerializer,
    UsageSummaryFilterSerializer,
    UsageSummarySerializer,
    UsageTotalsSerializer,
)

FILTERS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Requests that arrived at or after this time "
                                                                 "(ISO 8601; a date means its 00:00 UTC)."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Requests that arrived before this time."),
    OpenApiParameter("model", OpenApiTypes.STR, description="The `provider:modelId` that served the request."),
    OpenApiParameter("key", OpenApiTypes.INT, description="An inference key's id."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=UsageRecord.Status.values, description="How the request ended."),
]
GROUPS = {"day": "day", "model": "model", "key": "api_key_id"}


def filtered_usage(org, wanted: dict):
    records = usage_of(org)
    if "since" in wanted:
        records = records.filter(created_at__gte=wanted["since"])
    if "until" in wanted:
        records = records.filter(created_at__lt=wanted["until"])
    if "model" in wanted:
        records = records.filter(model=wanted["model"])
    if "key" in wanted:
        # Another organization's key id simply matches nothing here.
        records = records.filter(api_key_id=wanted["key"])
    if "status" in wanted:
        records = records.filter(status=wanted["status"])
    return records


class UsageListView(ManagementView):
    serializer_class = UsageSerializer
    pagination_class = NewestFirst

    @extend_schema(operation_id="usage_list", tags=["usage"], summary="Booked requests, newest first",
                   parameters=FILTERS, responses={200: UsageSerializer(many=True)})
    def get(self, request):
        wanted = self.valid(UsageFilterSerializer, request.query_params).validated_data
        page = self.paginate_queryset(filtered_usage(self.organization, wanted))
        return self.get_paginated_response(UsageSerializer(page, many=True).data)


class UsageSummaryView(ManagementView):
    pagination_class = None

    @extend_schema(operation_id="usage_summary", tags=["usage"], summary="Requests, tokens and cost per group",
                   parameters=[OpenApiParameter("group_by", OpenApiTypes.STR, required=True,
                                                enum=list(GROUPS), description="day (UTC), model or key"),
                               *FILTERS],
                   responses={200: UsageSummarySerializer})
    def get(self, request):
        wanted = self.valid(UsageSummaryFilterSerializer, request.query_params).validated_data
        group_by = wanted.pop("group_by")
        column = GROUPS[group_by]
        records = filtered_usage(self.organization, wanted)
        if group_by == "day":
            records = records.annotate(day=TruncDate("created_at", tzinfo=dt_timezone.utc))
        rows = (records.values(column).order_by(column)
                .annotate(requests=Count("id"), prompt_tokens_sum=Sum("prompt_tokens"),
                          completion_tokens_sum=Sum("completion_tokens"), cost_sum=Sum("cost")))
        name = "key_id" if group_by == "key" else group_by
        # Each row carries only the field it is grouped by (UsageGroupSerializer documents all three).
        results = [{name: row[column].isoformat() if group_by == "day" else row[column],
                    **UsageTotalsSerializer({"requests": row["requests"], "prompt_tokens": row["prompt_tokens_sum"],
                                             "completion_tokens": row["completion_tokens_sum"],
                                             "cost_usd": row["cost_sum"]}).data}
                   for row in rows]
        return Response({"group_by": group_by, "results": results})

class LedgerView(ManagementView):
    serializer_class = LedgerEntrySerializer

    @extend_schema(operation_id="ledger_list", tags=["ledger"], summary="Ledger entries, newest first",
                   description="Credits, usage charges, adjustments, redeemed codes and refunds; each entry's "
                               "`balance_after_usd` is the balance it left.",
                   responses={200: LedgerEntrySerializer(many=True)})
    def get(self, request):
        self.valid(PageFilterSerializer, request.query_params)
        page = self.paginate_queryset(ledger_of(self.organization))
        return self.get_paginated_response(LedgerEntrySerializer(page, many=True).data)
