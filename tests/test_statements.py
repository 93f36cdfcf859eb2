"""Monthly statements reconcile with the ledger to the picodollar, also for usage whose
records retention has deleted, and only owners and admins of the organization see them."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from unittest import mock

import pytest

from billing import ledger
from billing.models import LedgerEntry, UsageRecord
from billing.reconcile import book
from billing.retention import prune_usage
from billing.statements import monthly_statement
from tests.console.conftest import alice, as_alice, as_bob, as_charlie, as_dave, bob, charlie, dave  # noqa: F401
from tests.console.test_usage import event

pytestmark = pytest.mark.django_db

# Long before the org fixture's own credit (made at the real "now"), which so falls later.
OCT = datetime(2025, 10, 20, 9, 30, tzinfo=UTC)
NOV_FIRST_INSTANT = datetime(2025, 11, 1, tzinfo=UTC)
NOV = datetime(2025, 11, 5, 14, 0, tzinfo=UTC)
NOV_LAST_INSTANT = datetime(2025, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
DEC_FIRST_INSTANT = datetime(2025, 12, 1, tzinfo=UTC)
NOVEMBER = date(2025, 11, 1)


def at(when):
    """Book whatever happens inside at `when`, as if the clock said so."""
    return mock.patch("django.utils.timezone.now", return_value=when)


def used(org, when, model="mock:ok", prompt=8, completion=1) -> Decimal:
    with at(when):
        booked = event(org, model=model, prompt=prompt, completion=completion, when=when)
        book([booked])
    return Decimal(booked["cost"])


@pytest.fixture
def history(org, other_org):
    """October, November and December of `org`, with some of it in `other_org` too.
    Returns what November's usage per model should be, (requests, amount), and what
    October's usage cost."""
    november = {"mock:ok": [0, Decimal(0)], "demo:echo": [0, Decimal(0)]}

    def in_november(when, model, prompt, completion):
        november[model][0] += 1
        november[model][1] += used(org, when, model, prompt, completion)

    with at(OCT):
        ledger.credit(org.pk, Decimal("50"), note="october credit")
    october_usage = used(org, OCT, prompt=1000, completion=77)
    in_november(NOV_FIRST_INSTANT, "mock:ok", 8, 1)
    with at(NOV):
        ledger.credit(org.pk, Decimal("20"), note="Stripe top-up cs_test_1", reference="stripe:cs_test_1")
        code = ledger.mint_code(Decimal("5"))
        ledger.redeem(org.pk, code.code)
        ledger.adjust(org.pk, Decimal("-1.5"), note="goodwill correction")
        ledger.refund(org.pk, Decimal("2"), note="Stripe refund", reference="stripe:ch_1:refunded:200")
        ledger.credit(other_org.pk, Decimal("4242.4242"), note="not alpha's")
    for prompt, completion in ((3, 5), (123457, 9999), (1, 1)):
        in_november(NOV, "demo:echo", prompt, completion)
    in_november(NOV, "mock:ok", 77, 3)
    used(other_org, NOV, prompt=5, completion=5)
    in_november(NOV_LAST_INSTANT, "mock:ok", 12, 34)
    used(org, DEC_FIRST_INSTANT, prompt=9, completion=9)
    return {model: (n, -cost) for model, (n, cost) in november.items()}, october_usage


def entries_before(org, when):
    return LedgerEntry.objects.filter(account__organization=org, created_at__lt=when).order_by("id")


def test_the_statement_reconciles_with_the_ledger(org, history):
    november_usage, october_usage = history
    statement = monthly_statement(org, NOVEMBER)
    before, through = list(entries_before(org, NOV_FIRST_INSTANT)), list(entries_before(org, DEC_FIRST_INSTANT))
    # (balance_after is no check here: the org fixture's credit has a smaller id but a later time.)
    assert statement.opening == sum(e.amount for e in before) == 50 - october_usage
    assert statement.closing == sum(e.amount for e in through)
    assert statement.opening + statement.money_in_total + statement.usage_total + statement.other_total \
        == statement.closing
    assert [(e.kind, e.amount) for e in statement.money_in] == [("credit", Decimal(20)), ("redeem", Decimal(5))]
    assert [(e.kind, e.amount) for e in statement.other] == [("adjustment", Decimal("-1.5")), ("refund", Decimal(-2))]
    assert {u.model: (u.requests, u.amount) for u in statement.usage} == november_usage
    # Every picodollar: the month's entries are exactly what the statement adds up.
    month = LedgerEntry.objects.filter(account__organization=org, created_at__gte=NOV_FIRST_INSTANT,
                                       created_at__lt=DEC_FIRST_INSTANT)
    assert sum(e.amount for e in month) == statement.closing - statement.opening
    assert month.count() == len(statement.money_in) + len(statement.other) + sum(u.requests for u in statement.usage)


def test_usage_whose_records_retention_deleted_keeps_its_model(org, history):
    before = monthly_statement(org, NOVEMBER)
    result = prune_usage(datetime(2026, 1, 1, tzinfo=UTC), retention_days=45)  # records before Nov 17 go
    assert result.records > 0
    assert UsageRecord.objects.filter(organization=org, created_at__lt=datetime(2025, 11, 17, tzinfo=UTC)).count() == 0
    assert UsageRecord.objects.filter(organization=org, model="mock:ok").exists()  # the 30th's is kept
    after = monthly_statement(org, NOVEMBER)
    assert {u.model: (u.requests, u.amount) for u in after.usage} == history[0]
    assert (after.opening, after.closing) == (before.opening, before.closing)


def test_an_empty_month_opens_and_closes_at_the_same_balance(org, history):
    statement = monthly_statement(org, date(2025, 9, 1))
    assert (statement.opening, statement.closing, statement.usage, statement.money_in) == (0, 0, [], [])
    december = monthly_statement(org, date(2025, 12, 1))
    assert december.opening == monthly_statement(org, NOVEMBER).closing
    assert december.closing == december.opening + december.usage_total


def test_the_csv_adds_up_to_the_closing_balance(as_alice, org, history):
    resp = as_alice.get("/billing/statements/2025-11.csv")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/csv")
    assert resp["Content-Disposition"] == f'attachment; filename="{org.slug}-statement-2025-11.csv"'
    rows = list(csv.DictReader(io.StringIO(resp.content.decode())))
    statement = monthly_statement(org, NOVEMBER)
    (opening,) = [r for r in rows if r["section"] == "opening_balance"]
    (closing,) = [r for r in rows if r["section"] == "closing_balance"]
    moves = [Decimal(r["amount_usd"]) for r in rows if r["section"] in ("money_in", "usage", "other")]
    assert Decimal(opening["amount_usd"]) + sum(moves) == Decimal(closing["amount_usd"]) == statement.closing
    usage = {r["description"]: (int(r["requests"]), Decimal(r["amount_usd"])) for r in rows if r["section"] == "usage"}
    assert usage == history[0]
    assert "not alpha's" not in resp.content.decode() and "4242.4242" not in resp.content.decode()


def test_the_printable_page_shows_the_same_numbers(as_alice, org, history):
    page = as_alice.get("/billing/statements/2025-11/").content.decode()
    statement = monthly_statement(org, NOVEMBER)
    assert f'id="opening">{statement.opening.normalize():f}<' in page
    assert f'id="closing">{statement.closing.normalize():f}<' in page
    assert "<code>demo:echo</code>" in page and "4 requests" not in page and "3 requests" in page
    assert "@media print" in page and "/billing/statements/2025-11.csv" in page
    assert "not alpha&#x27;s" not in page


def test_owners_and_admins_see_statements_members_do_not(as_alice, as_dave, as_bob, history):
    assert as_alice.get("/billing/statements/").status_code == 302
    assert as_dave.get("/billing/statements/2025-11/").status_code == 200
    assert as_dave.get("/billing/statements/2025-11.csv").status_code == 200
    assert as_bob.get("/billing/statements/2025-11/").status_code == 403
    assert as_bob.get("/billing/statements/2025-11.csv").status_code == 403


def test_an_outsider_never_sees_anothers_statement(as_charlie, org, history):
    page = as_charlie.get("/billing/statements/2025-11.csv").content.decode()
    assert "october credit" not in page and "demo:echo" not in page and "4242.4242" in page


@pytest.mark.parametrize("month", ["2025-13", "2025", "abc", "2025-11-01", "1999-01", "9999-12"])
def test_a_month_that_is_not_one_is_404(as_alice, month):
    assert as_alice.get(f"/billing/statements/{month}/").status_code == 404
