"""The usage log, its filters, CSV export and request detail."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from billing.charging import UsageEvent
from billing.models import UsageRecord
from billing.money import token_cost, usd
from billing.reconcile import book
from gateway.keys.api_keys import mint_api_key

pytestmark = pytest.mark.django_db

JAN = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
FEB = datetime(2025, 2, 10, 12, 0, tzinfo=UTC)


def event(org, *, key=None, model="mock:ok", status="completed", prompt=8, completion=1, when=JAN,
          request_id=None, **extra) -> dict:
    """The usage event of one request of `org`, as the gateway queues it."""
    cost = token_cost(prompt, completion, Decimal("0.27"), Decimal("1.10"))
    request_id = request_id or f"req-{uuid.uuid4()}"
    fields = UsageEvent(
        request_id=request_id, organization_id=org.pk, key_id=key.pk if key else None, model_id=None,
        model=model, stream=False, status=status, http_status=200 if status == "completed" else 502,
        error_code=None if status == "completed" else "upstream_error", prompt_tokens=prompt,
        completion_tokens=completion, cached_tokens=0, reasoning_tokens=0, basis="provider",
        input_per_mtok="0.27", output_per_mtok="1.10", cached_input_per_mtok=None, cost=str(cost),
        started_at=when.isoformat(), latency_ms=42, ttft_ms=None,
    ).__dict__
    return {**fields, **extra}


def usage(org, **fields) -> str:
    """Book one request for `org` and return its request id."""
    booked = event(org, **fields)
    book([booked])
    return booked["request_id"]


def rows(resp) -> list[str]:
    """The request ids listed on a usage page, in order."""
    return re.findall(r'data-request-id="([^"]+)"', resp.content.decode())


def csv_rows(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(resp.streaming_content).decode())))


@pytest.fixture
def keys(org):
    first, _ = mint_api_key(org, name="first")
    second, _ = mint_api_key(org, name="second")
    return first, second


def test_it_lists_only_the_orgs_requests(as_alice, org, other_org):
    mine = usage(org)
    theirs = usage(other_org)
    resp = as_alice.get("/usage/")
    assert resp.status_code == 200
    assert rows(resp) == [mine]
    assert theirs not in resp.content.decode()


def test_a_row_shows_the_request(as_alice, org, keys):
    rid = usage(org, key=keys[0], prompt=8, completion=1)
    page = as_alice.get("/usage/").content.decode()
    assert '<td class="num cost">0.00000326</td>' in page
    assert keys[0].prefix in page and "mock:ok" in page and "42 ms" in page
    assert f'href="/usage/{rid}/"' in page


def test_a_member_may_read_it(as_bob, org):
    rid = usage(org)
    assert rows(as_bob.get("/usage/")) == [rid]


def test_it_filters_by_key(as_alice, org, keys):
    first = usage(org, key=keys[0])
    usage(org, key=keys[1])
    assert rows(as_alice.get("/usage/", {"key": keys[0].pk})) == [first]


def test_it_filters_by_model(as_alice, org):
    echo = usage(org, model="demo:echo")
    usage(org, model="mock:ok")
    resp = as_alice.get("/usage/", {"model": "demo:echo"})
    assert rows(resp) == [echo]
    assert '<option value="mock:ok">' in resp.content.decode()  # the models seen are offered


def test_it_filters_by_status(as_alice, org):
    failed = usage(org, status="upstream_error")
    usage(org)
    assert rows(as_alice.get("/usage/", {"status": "upstream_error"})) == [failed]


def test_it_filters_by_a_gateway_error(as_alice, org):
    failed = usage(org, status="error")
    usage(org)
    resp = as_alice.get("/usage/", {"status": "error"})
    assert rows(resp) == [failed]
    page = resp.content.decode()
    assert '<option value="error" selected>Gateway error</option>' in page
    assert "Gateway error</span>" in page  # the row's badge names it too


def test_every_status_billing_books_is_offered(as_alice, org):
    page = as_alice.get("/usage/").content.decode()
    for status in UsageRecord.Status:
        assert f'<option value="{status.value}">{status.label}</option>' in page


def test_an_outsider_filtering_by_status_sees_none_of_it(as_charlie, org, other_org):
    rid = usage(org, status="error")
    theirs = usage(other_org, status="error")
    assert rows(as_charlie.get("/usage/", {"status": "error"})) == [theirs]
    assert as_charlie.get(f"/usage/{rid}/").status_code == 404


def test_it_filters_by_date_range(as_alice, org):
    jan = usage(org, when=JAN)
    feb = usage(org, when=FEB)
    assert rows(as_alice.get("/usage/", {"date_from": "2025-02-01"})) == [feb]
    assert rows(as_alice.get("/usage/", {"date_to": "2025-01-10"})) == [jan]  # the end day is included
    assert rows(as_alice.get("/usage/", {"date_from": "2025-01-11", "date_to": "2025-02-09"})) == []


def test_another_orgs_key_is_not_a_filter(as_alice, org, other_org):
    their_key, _ = mint_api_key(other_org, name="theirs")
    usage(other_org, key=their_key)
    mine = usage(org)
    resp = as_alice.get("/usage/", {"key": their_key.pk})
    assert rows(resp) == [mine]  # the invalid choice is ignored, not used
    assert their_key.prefix not in resp.content.decode()


def older_link(resp) -> str | None:
    found = re.search(r'href="\?([^"]*before=[^"]*)">Older', resp.content.decode())
    return found.group(1).replace("&amp;", "&") if found else None


def test_pagination_keeps_the_filters(as_alice, org):
    book([event(org, model="demo:echo") for _ in range(51)] + [event(org, model="mock:ok")])
    first = as_alice.get("/usage/", {"model": "demo:echo"})
    assert len(rows(first)) == 50
    link = older_link(first)
    assert link.startswith("model=demo%3Aecho&before=")
    second = as_alice.get("/usage/?" + link)
    assert len(rows(second)) == 1
    assert set(rows(first)).isdisjoint(rows(second))


def test_the_list_query_count_does_not_grow_with_rows(as_alice, org, keys, django_assert_max_num_queries):
    book([event(org, key=keys[0]) for _ in range(20)])
    with django_assert_max_num_queries(10):
        assert len(rows(as_alice.get("/usage/"))) == 20


def test_it_exports_csv(as_alice, org, keys, other_org):
    rid = usage(org, key=keys[0], prompt=8, completion=1)
    usage(other_org)
    resp = as_alice.get("/usage/export.csv")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/csv")
    assert resp["Content-Disposition"].startswith("attachment; filename=")
    header, *body = csv_rows(resp)
    assert header[:3] == ["time", "request_id", "model"]
    assert len(body) == 1
    row = dict(zip(header, body[0]))
    assert row["request_id"] == rid
    assert row["cost_usd"] == "0.00000326"
    assert row["key_prefix"] == keys[0].prefix


def test_the_export_keeps_large_costs_exact(as_alice, org):
    usage(org, prompt=1_234_567, completion=89_012)  # 0.33333309 + 0.0979132
    header, row = csv_rows(as_alice.get("/usage/export.csv"))
    assert dict(zip(header, row))["cost_usd"] == "0.43124629"


def test_the_export_uses_the_filters(as_alice, org):
    failed = usage(org, status="upstream_error")
    usage(org)
    _, *body = csv_rows(as_alice.get("/usage/export.csv", {"status": "upstream_error"}))
    assert [r[1] for r in body] == [failed]


def test_the_detail_shows_tokens_prices_and_the_ledger_entry(as_alice, org, keys):
    rid = usage(org, key=keys[0], prompt=8, completion=1)
    resp = as_alice.get(f"/usage/{rid}/")
    assert resp.status_code == 200
    page = resp.content.decode()
    assert "0.00000326" in page and "0.27" in page and "1.1" in page
    assert f"usage:{rid}" in page  # the ledger reference
    assert "-0.00000326" in page and "99.99999674" in page  # amount and balance after
    assert "reported these token counts" in page
    assert keys[0].prefix in page


def test_a_free_request_has_no_ledger_entry(as_alice, org):
    rid = usage(org, status="upstream_error", prompt=0, completion=0, basis="estimated")
    page = as_alice.get(f"/usage/{rid}/").content.decode()
    assert "no ledger entry" in page and "estimated the tokens" in page


def test_it_checks_ownership(as_charlie, org):
    rid = usage(org)
    assert as_charlie.get(f"/usage/{rid}/").status_code == 404
    assert rows(as_charlie.get("/usage/")) == []
    _, *body = csv_rows(as_charlie.get("/usage/export.csv"))
    assert body == []


def test_the_empty_state_says_how_to_start(as_alice):
    page = as_alice.get("/usage/").content.decode()
    assert 'href="/quickstart/"' in page
    assert "requests appear within a few seconds" in page.lower()


def test_it_requires_a_login(org):
    rid = usage(org)
    for url in ("/usage/", "/usage/export.csv", f"/usage/{rid}/"):
        resp = Client().get(url)
        assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


# Search by request id, totals, keys by name


def test_it_finds_a_request_by_its_exact_id(as_alice, org):
    wanted = usage(org, request_id="req-wanted-1")
    usage(org, request_id="req-wanted-10")
    resp = as_alice.get("/usage/", {"request_id": wanted})
    assert rows(resp) == [wanted]
    assert rows(as_alice.get("/usage/", {"request_id": "req-wanted"})) == []  # exact, not a prefix


def test_searching_another_tenants_request_id_finds_nothing(as_charlie, org, other_org):
    theirs = usage(org)
    usage(other_org)
    resp = as_charlie.get("/usage/", {"request_id": theirs})
    assert resp.status_code == 200 and rows(resp) == [] and resp.context["totals"] is None
    assert "No requests match these filters" in resp.content.decode()


def test_the_export_follows_the_search(as_alice, org):
    wanted = usage(org)
    usage(org)
    lines = csv_rows(as_alice.get("/usage/export.csv", {"request_id": wanted}))
    assert [line[1] for line in lines[1:]] == [wanted]


def test_the_totals_row_sums_the_filtered_requests(as_alice, org, keys):
    first, second = keys
    usage(org, key=first, prompt=1000, completion=10)
    usage(org, key=first, prompt=2000, completion=20)
    usage(org, key=second, prompt=5, completion=5)
    resp = as_alice.get("/usage/", {"key": first.pk})
    totals = resp.context["totals"]
    expected = token_cost(3000, 30, Decimal("0.27"), Decimal("1.10"))
    assert (totals["requests"], totals["prompt_tokens"], totals["completion_tokens"]) == (2, 3000, 30)
    assert totals["cost"] == token_cost(1000, 10, Decimal("0.27"), Decimal("1.10")) + token_cost(
        2000, 20, Decimal("0.27"), Decimal("1.10"))
    assert totals["cost"] == expected  # no rounding is lost in the sum
    tfoot = re.search(r"<tfoot>.*?</tfoot>", resp.content.decode(), re.S).group(0)
    assert "2 requests matching the filters" in tfoot and "3000 / 30" in tfoot and f">{usd(expected)}<" in tfoot


def test_keys_show_by_name_and_prefix(as_alice, org, keys):
    first, _ = keys
    usage(org, key=first)
    page = as_alice.get("/usage/").content.decode()
    assert re.search(rf'<span class="nowrap">first</span> <code>{re.escape(first.prefix)}…</code>', page)
