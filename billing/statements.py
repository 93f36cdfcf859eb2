"""Monthly statements, computed from the ledger alone so they match it to the picodollar.

A month is a UTC calendar month. The opening balance is the sum of the organization's
ledger entries created before it, the closing balance the opening plus every entry created
in it; in between each entry is shown once: money in (credits, redeemed codes), usage
summed per model, and everything else (adjustments, refunds) line by line.

Usage per model: a usage entry is joined to the usage record that points at it. Retention
(billing.retention) deletes old usage records but never ledger entries, so an entry may
have outlived its record; its model is then read from the entry's own note, which the
booking wrote as "<model> <prompt>+<completion> tokens". Amounts always come from the
entries, so the sums are exact whatever the join finds.
"""

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Substr

from console.tenancy.models import Organization

from .models import USAGE_REFERENCE_PREFIX, LedgerEntry, UsageRecord
from .money import ZERO, usd

MONEY_IN = (LedgerEntry.Kind.CREDIT, LedgerEntry.Kind.REDEEM)
USAGE_NOTE = re.compile(r"^(?P<model>.+) \d+\+\d+ tokens$")
UNKNOWN_MODEL = "(model not recorded)"


@dataclass
class ModelUsage:
    model: str
    requests: int
    amount: Decimal  # negative, like the entries it sums


@dataclass
class Statement:
    organization: Organization
    month: date  # the first day of the month
    opening: Decimal
    money_in: list[LedgerEntry] = field(default_factory=list)
    usage: list[ModelUsage] = field(default_factory=list)
    other: list[LedgerEntry] = field(default_factory=list)
    closing: Decimal = ZERO

    @property
    def money_in_total(self) -> Decimal:
        return sum((e.amount for e in self.money_in), ZERO)

    @property
    def usage_total(self) -> Decimal:
        return sum((u.amount for u in self.usage), ZERO)

    @property
    def other_total(self) -> Decimal:
        return sum((e.amount for e in self.other), ZERO)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _sum(entries) -> Decimal:
    # Picodollars are integers in the database, so the SQL sum is exact on every backend.
    return entries.aggregate(total=Sum("amount"))["total"] or ZERO


def _usage_by_model(entries) -> list[ModelUsage]:
    # An entry's request is named in its reference (UsageRecord.ledger_entry).
    record_model = UsageRecord.objects.filter(
        request_id=Substr(OuterRef("reference"), len(USAGE_REFERENCE_PREFIX) + 1)).values("model")[:1]
    usage = entries.filter(kind=LedgerEntry.Kind.USAGE).annotate(record_model=Subquery(record_model))
    by_model: dict[str, ModelUsage] = {}
    for row in (usage.filter(record_model__isnull=False).values("record_model")
                .annotate(requests=Count("id"), amount=Sum("amount"))):
        by_model[row["record_model"]] = ModelUsage(row["record_model"], row["requests"], row["amount"])
    # Only entries whose records retention has deleted are read one by one.
    for note, amount in usage.filter(record_model__isnull=True).values_list("note", "amount"):
        match = USAGE_NOTE.match(note)
        model = match["model"] if match else UNKNOWN_MODEL
        row = by_model.setdefault(model, ModelUsage(model, 0, ZERO))
        row.requests += 1
        row.amount += amount
    return sorted(by_model.values(), key=lambda u: (u.amount, u.model))


def monthly_statement(organization: Organization, month: date) -> Statement:
    start, end = month_bounds(month)
    entries = LedgerEntry.objects.filter(account__organization=organization)
    in_month = entries.filter(created_at__gte=start, created_at__lt=end)
    opening = _sum(entries.filter(created_at__lt=start))
    rows = list(in_month.exclude(kind=LedgerEntry.Kind.USAGE).order_by("created_at", "id"))
    return Statement(
        organization=organization,
        month=date(month.year, month.month, 1),
        opening=opening,
        money_in=[e for e in rows if e.kind in MONEY_IN],
        usage=_usage_by_model(in_month),
        other=[e for e in rows if e.kind not in MONEY_IN],
        closing=opening + _sum(in_month),
    )


CSV_HEADER = ["section", "date", "description", "reference", "requests", "amount_usd"]


def _entry_row(section: str, e: LedgerEntry) -> list:
    description = e.get_kind_display() + (f": {e.note}" if e.note else "")
    return [section, e.created_at.date().isoformat(), description, e.reference, "", usd(e.amount)]


def statement_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    first_day = statement.month.isoformat()
    writer.writerow(["opening_balance", first_day, "balance before the month", "", "", usd(statement.opening)])
    for e in statement.money_in:
        writer.writerow(_entry_row("money_in", e))
    for u in statement.usage:
        writer.writerow(["usage", "", u.model, "", u.requests, usd(u.amount)])
    for e in statement.other:
        writer.writerow(_entry_row("other", e))
    writer.writerow(["closing_balance", "", "opening balance plus the month's entries", "", "", usd(statement.closing)])
    return out.getvalue()
