"""How the console and the management API cost on a long history (made by bench/history.py).

    .venv/bin/python bench/history_measure.py [--runs 20]

Times each page with Django's test client, in process, against DATABASE_URL (the pages'
own queries and templates, no network): p50 and p95 over --runs, after one warm-up. Deep
pages are read from a cursor near the oldest end of the history (80 of 90 days back). The
CSV export of a month is streamed to nowhere and timed once, with the process's peak RSS
before and after: a flat peak means it streamed. Also times ledger_is_consistent.
"""

import argparse
import base64
import json
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import history  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(get, runs: int) -> dict:
    get()  # warm-up: the first call pays for imports and caches
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        get()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {"p50": round(statistics.median(samples), 1),
            "p95": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 1)}


def drf_cursor(position: datetime) -> str:
    """A DRF CursorPagination cursor at `position` (as its `next` links encode one)."""
    query = urlencode({"p": str(position)}, doseq=True)
    return base64.b64encode(query.encode()).decode()


def measure(runs: int, export: bool = True) -> dict:
    from django.test import Client

    from billing.models import UsageRecord
    from billing.reconcile import ledger_is_consistent
    from console.pages.keyset import cursor_of
    from gateway.keys.api_keys import create_management_key

    org, user, _, _ = history.organization()
    records = UsageRecord.objects.filter(organization=org)
    total = records.count()
    newest = records.order_by("-created_at", "-id").first()
    deep_at = newest.created_at - timedelta(days=80)
    deep = records.filter(created_at__lte=deep_at).order_by("-created_at", "-id").first()
    client = Client()
    client.force_login(user)
    _, secret = create_management_key(org, name=f"history bench {time.time():.0f}")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def ok(client, url, **params):
        def get():
            resp = client.get(url, params)
            assert resp.status_code == 200, (url, resp.status_code, resp.content[:300])
            return resp
        return get

    deep_day = deep_at.astimezone(UTC).date().isoformat()
    pages = {
        "dashboard": ok(client, "/dashboard/"),
        "usage list, first page": ok(client, "/usage/"),
        "usage list, 80 days deep (cursor)": ok(client, "/usage/", before=cursor_of(deep)),
        "usage list, filtered by model": ok(client, "/usage/", model="openai:gpt-4o"),
        "usage detail": ok(client, f"/usage/{newest.request_id}/"),
        "billing ledger, first page": ok(client, "/billing/"),
        "billing ledger, 80 days deep": ok(client, "/billing/", before=deep_day),
        "billing ledger, one day's entries": ok(client, f"/billing/ledger/{deep_day}/"),
        "API usage, first page": ok(api, "/api/v1/usage"),
        "API usage, 80 days deep (cursor)": ok(api, "/api/v1/usage", cursor=drf_cursor(deep.created_at)),
        "API usage summary by day": ok(api, "/api/v1/usage/summary", group_by="day"),
        "API usage summary by model": ok(api, "/api/v1/usage/summary", group_by="model"),
        "API ledger, first page": ok(api, "/api/v1/ledger"),
    }
    results = {name: timed(get, runs) for name, get in pages.items()}

    t = time.perf_counter()
    consistent = ledger_is_consistent(org.pk)
    results["ledger_is_consistent"] = {"seconds": round(time.perf_counter() - t, 2), "value": consistent}

    if not export:
        return {"records": total, "when": datetime.now(UTC).isoformat(timespec="seconds"), "results": results}
    month_to = newest.created_at.date()
    month_from = month_to - timedelta(days=29)
    before = peak_rss_mib()
    t = time.perf_counter()
    resp = client.get("/usage/export.csv", {"date_from": month_from.isoformat(), "date_to": month_to.isoformat()})
    size = rows = 0
    for chunk in resp.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    results["CSV export of 30 days"] = {"seconds": round(time.perf_counter() - t, 1), "rows": rows - 1,
                                        "mib": round(size / 2**20), "peak_rss_mib_before": round(before),
                                        "peak_rss_mib_after": round(peak_rss_mib())}
    return {"records": total, "when": datetime.now(UTC).isoformat(timespec="seconds"), "results": results}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-export", action="store_true", help="leave out the CSV export (minutes at 10M)")
    args = parser.parse_args()
    history.setup_django()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    print(json.dumps(measure(args.runs, export=not args.no_export), indent=1))


if __name__ == "__main__":
    main()
