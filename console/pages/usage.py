"""The request log: every booked request of the organization, filterable, exportable as CSV."""

import csv
from datetime import timedelta

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from billing.models import UsageRecord
from billing.money import usd
from billing.queries import day_totals, usage_of, usage_totals
from console.pages.common import org_view
from console.pages.filters_usage import STATUSES, UsageFilterForm, filtered_days, filtered_usage, start_of
from console.pages.keyset import keyset_page
from console.tenancy.access import get_for_org

PAGE_SIZE = 50

BASIS_EXPLAINED = {
    UsageRecord.Basis.PROVIDER: "The provider reported these token counts, and they were charged as reported.",
    UsageRecord.Basis.ESTIMATED: (
        "The provider reported no usage, so the gateway estimated the tokens from the prompt "
        "and the answer it relayed."
    ),
    UsageRecord.Basis.PARTIAL: (
        "The answer was cut short: charged for an estimate of the prompt plus the part of the answer "
        "that was relayed before it stopped, never for text the caller did not get."
    ),
}
STATUS_LABELS = dict(STATUSES)


def _for_display(record: UsageRecord) -> UsageRecord:
    record.cost_usd = usd(record.cost)
    record.ok = record.status == "completed"
    record.status_label = STATUS_LABELS.get(record.status, record.status)
    return record


def searched_id(request) -> str:
    return request.GET.get("request_id", "").strip()[:100]


def shown_usage(request, form: UsageFilterForm):
    """The filtered records, narrowed to one request when its id is searched for (an exact
    match inside this organization: another tenant's id finds nothing)."""
    records = filtered_usage(request.org, form)
    wanted = searched_id(request)
    return records.filter(request_id=wanted) if wanted else records


@org_view()
def index(request):
    form = UsageFilterForm(request.GET, org=request.org)
    records = shown_usage(request, form)
    # Summed from the per-day table, however many records match; a searched request id
    # (one row) or a console outside UTC sums the records themselves.
    days = None if searched_id(request) else filtered_days(request.org, form)
    if days is None:
        page = keyset_page(records, request.GET, PAGE_SIZE)
        totals = usage_totals(records) if page.object_list else None
    else:
        totals = day_totals(days)
        # The days that hold matching requests bound the index walk: a filter matching
        # nothing, or one old day, never scans the whole history.
        matching = [start_of(totals["first_day"]), start_of(totals["last_day"] + timedelta(days=1))] \
            if totals["requests"] else None
        page = keyset_page(records.filter(created_at__gte=matching[0], created_at__lt=matching[1])
                           if matching else records.none(), request.GET, PAGE_SIZE)
        if not page.object_list:
            totals = None
    for record in page:
        _for_display(record)
    if totals:
        totals["cost_usd"] = usd(totals["cost"])
    return render(request, "console/usage/index.html", {
        "title": "Usage",
        "form": form,
        "request_id": searched_id(request),
        "page": page,
        "totals": totals,
        "filtering": form.is_filtering() or bool(searched_id(request)),
        "has_any": bool(page.object_list) or usage_of(request.org).exists(),
    })


class _Echo:
    def write(self, value):
        return value


CSV_HEADER = [
    "time", "request_id", "model", "key_prefix", "status", "http_status", "error_code", "stream", "basis",
    "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "cost_usd", "latency_ms", "ttft_ms",
]


def _text(value: str) -> str:
    # A cell starting with = + - @ would be run as a formula by spreadsheet programs.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


CSV_FIELDS = ["created_at", "request_id", "model", "api_key__prefix", "status", "http_status", "error_code", "stream",
              "basis", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "cost",
              "latency_ms", "ttft_ms"]
ROWS_PER_CHUNK = 1000


def _csv_row(values: tuple) -> list:
    (created_at, request_id, model, key_prefix, status, http_status, error_code, stream, basis, prompt, cached,
     completion, reasoning, cost, latency_ms, ttft_ms) = values
    return [
        created_at.isoformat(), request_id, _text(model), key_prefix or "", status, http_status,
        _text(error_code), "yes" if stream else "no", basis, prompt, cached, completion, reasoning, usd(cost),
        latency_ms, "" if ttft_ms is None else ttft_ms,
    ]


@org_view()
def export(request):
    """Streamed from a server-side cursor as plain tuples, a thousand rows per chunk: memory
    stays flat however long the history, and no model object is built per row."""
    form = UsageFilterForm(request.GET, org=request.org)
    records = shown_usage(request, form).select_related(None).values_list(*CSV_FIELDS)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_HEADER)
        chunk = []
        for values in records.iterator(chunk_size=ROWS_PER_CHUNK):
            chunk.append(writer.writerow(_csv_row(values)))
            if len(chunk) == ROWS_PER_CHUNK:
                yield "".join(chunk)
                chunk = []
        yield "".join(chunk)

    filename = f"usage-{request.org.slug}-{timezone.localdate():%Y-%m-%d}.csv"
    return StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@org_view()
def detail(request, request_id):
    record = get_for_org(UsageRecord.objects.select_related("api_key"), request.org,
                         request_id=request_id)
    entry = record.ledger_entry
    return render(request, "console/usage/detail.html", {
        "title": f"Request {record.request_id}",
        "record": _for_display(record),
        "basis_explained": BASIS_EXPLAINED.get(record.basis, record.basis),
        "prices": {
            "input": usd(record.input_per_mtok),
            "cached": None if record.cached_input_per_mtok is None else usd(record.cached_input_per_mtok),
            "cache_write": None if record.cache_write_per_mtok is None else usd(record.cache_write_per_mtok),
            "output": usd(record.output_per_mtok),
        },
        "entry": entry,
        "entry_amount": usd(entry.amount) if entry else None,
        "entry_balance_after": usd(entry.balance_after) if entry else None,
    })


urlpatterns = [
    path("usage/", index, name="usage"),
    path("usage/export.csv", export, name="usage_export"),
    path("usage/<str:request_id>/", detail, name="usage_detail"),
]
