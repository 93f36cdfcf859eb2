"""/api/v1/usage, /usage/summary and /ledger: what the organization's requests cost, as
booked (a request shows here once reconciliation has booked it, within seconds)."""

from datetime import timezone as dt_timezone

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from billing.models import UsageRecord
from billing.queries import days_of, ledger_of, usage_of

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


def _midnight(moment) -> bool:
    utc = moment.astimezone(dt_timezone.utc)
    return utc.hour == utc.minute == utc.second == utc.microsecond == 0


def filtered_days(org, wanted: dict):
    """The per-day sums (billing.daily) matching `wanted`, or None when a bound falls inside
    a UTC day and only the records themselves can answer."""
    if any(name in wanted and not _midnight(wanted[name]) for name in ("since", "until")):
        return None
    days = days_of(org)
    if "since" in wanted:
        days = days.filter(day__gte=wanted["since"].astimezone(dt_timezone.utc).date())
    if "until" in wanted:
        days = days.filter(day__lt=wanted["until"].astimezone(dt_timezone.utc).date())
    if "model" in wanted:
        days = days.filter(model=wanted["model"])
    if "key" in wanted:
        days = days.filter(key_id=wanted["key"])
    if "status" in wanted:
        days = days.filter(status=wanted["status"])
    return days


def summary_rows(org, wanted: dict, group_by: str):
    """Rows of the group's value, requests, prompt/completion token sums and cost sum: from
    the per-day sums when they can answer (a few thousand rows), else from the records."""
    days = filtered_days(org, wanted)
    if days is not None:
        column = {"day": "day", "model": "model", "key": "key_id"}[group_by]
        rows = (days.values(column).order_by(column)
                .annotate(requests_sum=Sum("requests"), prompt_tokens_sum=Sum("prompt_tokens"),
                          completion_tokens_sum=Sum("completion_tokens"), cost_sum=Sum("cost")))
        return [(row[column] or None if group_by == "key" else row[column], row["requests_sum"],
                 row["prompt_tokens_sum"], row["completion_tokens_sum"], row["cost_sum"]) for row in rows]
    column = GROUPS[group_by]
    records = filtered_usage(org, wanted)
    if group_by == "day":
        records = records.annotate(day=TruncDate("created_at", tzinfo=dt_timezone.utc))
    rows = (records.values(column).order_by(column)
            .annotate(requests=Count("id"), prompt_tokens_sum=Sum("prompt_tokens"),
                      completion_tokens_sum=Sum("completion_tokens"), cost_sum=Sum("cost")))
    return [(row[column], row["requests"], row["prompt_tokens_sum"], row["completion_tokens_sum"], row["cost_sum"])
            for row in rows]


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
        name = "key_id" if group_by == "key" else group_by
        # Each row carries only the field it is grouped by (UsageGroupSerializer documents all three).
        results = [{name: value.isoformat() if group_by == "day" else value,
                    **UsageTotalsSerializer({"requests": requests, "prompt_tokens": prompt,
                                             "completion_tokens": completion, "cost_usd": cost}).data}
                   for value, requests, prompt, completion, cost in summary_rows(self.organization, wanted, group_by)]
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
