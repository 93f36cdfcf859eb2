"""The usage list's cursor pages and the ledger grouped per day: nothing skipped, nothing
twice, sums exact to the picodollar, every entry reachable."""

import re
from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal

import pytest

from billing.ledger import credit
from billing.models import LedgerEntry, UsageRecord
from billing.reconcile import book
from console.pages import usage as usage_page
from tests.console.test_usage import JAN, event, rows

pytestmark = pytest.mark.django_db


def older_link(resp):
    found = re.search(r'href="\?([^"]*)">Older', resp.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


def newer_link(resp):
    found = re.search(r'href="\?([^"]*)">Newer', resp.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


def test_cursor_pages_cover_equal_timestamps_without_gaps_or_repeats(as_alice, org, other_org, monkeypatch):
    monkeypatch.setattr(usage_page, "PAGE_SIZE", 3)
    # Eleven requests, most at the very same microsecond: only the id tells them apart.
    same = [event(org, when=JAN) for _ in range(8)]
    book(same + [event(org, when=JAN + timedelta(seconds=s)) for s in (1, 2)]
         + [event(org, when=JAN - timedelta(seconds=1))] + [event(other_org, when=JAN)])
    expected = list(UsageRecord.objects.filter(organization=org).order_by("-created_at", "-id")
                    .values_list("request_id", flat=True))
    pages, resp = [], as_alice.get("/usage/")
    while True:
        pages.append(rows(resp))
        link = older_link(resp)
        if link is None:
            break
        resp = as_alice.get("/usage/?" + link)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    assert [rid for page in pages for rid in page] == expected

    # And back again with the newer links, from the oldest page to the first.
    back = [pages[-1]]
    while (link := newer_link(resp)) is not None:
        resp = as_alice.get("/usage/?" + link)
        back.append(rows(resp))
    assert back[::-1] == pages


def test_a_malformed_cursor_is_the_first_page(as_alice, org):
    rid = book([event(org)]) and UsageRecord.objects.get(organization=org).request_id
    assert rows(as_alice.get("/usage/", {"before": "not-a-cursor"})) == [rid]


def test_the_usage_totals_from_day_sums_match_the_records(as_alice, org, keys):
    book([event(org, key=keys[i % 2], prompt=i * 1000, completion=7, when=JAN + timedelta(hours=i * 7),
                status="completed" if i % 3 else "upstream_error") for i in range(12)])
    for params in ({}, {"key": keys[0].pk}, {"status": "upstream_error"}, {"date_from": "2025-01-11"},
                   {"date_to": "2025-01-11", "key": keys[1].pk}):
        page = as_alice.get("/usage/", params).content.decode()
        records = UsageRecord.objects.filter(organization=org)
        if "key" in params:
            records = records.filter(api_key_id=params["key"])
        if "status" in params:
            records = records.filter(status=params["status"])
        if "date_from" in params:
            records = records.filter(created_at__gte="2025-01-11T00:00:00Z")
        if "date_to" in params:
            records = records.filter(created_at__lt="2025-01-12T00:00:00Z")
        cost = sum((r.cost for r in records), Decimal(0))
        assert f'<td class="num total-cost">{usage_page.usd(cost)}</td>' in page, params
        assert f"Total: {records.count()} request" in page, params


@pytest.fixture
def keys(org):
    from gateway.keys.api_keys import mint_api_key
    return [mint_api_key(org, name=n)[0] for n in ("first", "second")]


def ledger_day_rows(page: str) -> dict[str, tuple[str, int]]:
    found = re.findall(r'data-ledger-day="([\d-]+)">.*?class="num amount">([^<]+)</td>.*?>(\d+) charges?: entries',
                       page, re.S)
    return {day: (amount, int(count)) for day, amount, count in found}


def test_the_ledger_shows_usage_per_day_exactly_and_credits_one_by_one(as_alice, org, monkeypatch):
    # Ledger entries are dated when they are booked: book three days' worth, a day apart.
    from django.utils import timezone
    real_now = timezone.now
    for days_back in (2, 1, 0):
        monkeypatch.setattr(timezone, "now", lambda d=days_back: real_now() - timedelta(days=d))
        book([event(org, prompt=1000 + i * 37 + days_back, completion=i) for i in range(5 + days_back)])
        credit(org.pk, Decimal("1.000000000001"), note=f"top-up {days_back}")
    monkeypatch.setattr(timezone, "now", real_now)
    page = as_alice.get("/billing/").content.decode()

    by_day = defaultdict(lambda: [Decimal(0), 0])
    for e in LedgerEntry.objects.filter(account__organization=org, kind="usage"):
        day = e.created_at.astimezone(UTC).date().isoformat()
        by_day[day][0] += e.amount
        by_day[day][1] += 1
    assert ledger_day_rows(page) == {day: (usage_page.usd(total), count) for day, (total, count) in by_day.items()}
    assert page.count("top-up ") == 3 and page.count("+1.000000000001") == 3
    assert 'data-ledger-id' in page and page.count('class="usage-day"') == 3


def test_every_entry_of_a_day_is_reachable_from_its_line(as_alice, org, monkeypatch):
    from console.pages import billing
    monkeypatch.setattr(billing, "PAGE_SIZE", 4)
    credit(org.pk, Decimal("5"), note="early")
    book([event(org, prompt=100 + i) for i in range(9)])
    credit(org.pk, Decimal("2"), note="late")
    day = LedgerEntry.objects.filter(account__organization=org).first().created_at.astimezone(UTC).date()
    seen, url = [], f"/billing/ledger/{day.isoformat()}/"
    while url:
        resp = as_alice.get(url)
        seen += [int(pk) for pk in re.findall(r'data-ledger-id="(\d+)"', resp.content.decode())]
        link = re.search(r'href="(\?before=\d+)">Older', resp.content.decode())
        url = f"/billing/ledger/{day.isoformat()}/{link.group(1)}" if link else None
    entries = LedgerEntry.objects.filter(account__organization=org).order_by("-id")
    assert seen == list(entries.values_list("pk", flat=True)) and len(seen) == 12  # the 100 USD test credit, 5, 9 charges, 2


def test_an_outsider_sees_no_day_of_another_ledger(as_charlie, org):
    book([event(org)])
    day = LedgerEntry.objects.filter(account__organization=org).first().created_at.astimezone(UTC).date()
    page = as_charlie.get(f"/billing/ledger/{day.isoformat()}/").content.decode()
    assert "data-ledger-id" not in page
    assert as_charlie.get("/billing/ledger/not-a-day/").status_code == 404
