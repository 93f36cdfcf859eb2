"""The ledger as people read it: usage charges summed into one line per UTC day, credits,
refunds, adjustments and redeemed codes each on their own line, newest first.

Read from LedgerUsageDay (kept with the entries by billing.daily) and the partial index of
non-usage entries, so a page costs the same with a hundred entries or ten million. Pages are
whole days: `before` is the oldest day of the previous page (a cursor, not a page number, so
a deep page is as fast as the first). Every entry stays reachable through its day
(`day_entries`).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from .models import LedgerEntry, LedgerUsageDay
from .queries import account_of

DAYS_PER_PAGE = 30
# More single entries than this in one page's days (a script crediting in a loop) and the
# page ends early; the day's own listing still has them all.
ENTRIES_PER_PAGE = 500


@dataclass
class Line:
    day: date
    at: datetime
    sort_id: int
    amount: Decimal
    balance_after: Decimal
    entry: LedgerEntry | None = None  # a single entry
    usage: LedgerUsageDay | None = None  # a day of usage charges

    @property
    def is_usage_day(self) -> bool:
        return self.usage is not None


@dataclass
class LinesPage:
    lines: list[Line]
    older: date | None  # pass as `before` for the next page, None on the last


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def ledger_lines(org, before: date | None = None, days: int = DAYS_PER_PAGE) -> LinesPage:
    account = account_of(org)
    if account is None:
        return LinesPage([], None)
    usage_days = LedgerUsageDay.objects.filter(account_id=account.pk).order_by("-day")
    singles = LedgerEntry.objects.filter(account_id=account.pk).exclude(kind=LedgerEntry.Kind.USAGE).order_by("-id")
    if before is not None:
        usage_days = usage_days.filter(day__lt=before)
        singles = singles.filter(created_at__lt=start_of(before))
    usage_days = list(usage_days[:days + 1])
    singles = list(singles[:ENTRIES_PER_PAGE + 1])
    truncated = len(singles) > ENTRIES_PER_PAGE
    singles = singles[:ENTRIES_PER_PAGE]

    candidates = sorted({u.day for u in usage_days} | {e.created_at.astimezone(UTC).date() for e in singles},
                        reverse=True)
    shown = candidates[:days]
    if truncated:
        oldest_single = singles[-1].created_at.astimezone(UTC).date()
        complete = [d for d in shown if d > oldest_single]
        shown = complete or shown[:1]
    more = len(candidates) > len(shown) or truncated
    wanted = set(shown)

    lasts = {e.pk: e for e in LedgerEntry.objects.filter(pk__in=[u.last_entry_id for u in usage_days if u.day in wanted])}
    lines = []
    for u in usage_days:
        if u.day in wanted:
            last = lasts.get(u.last_entry_id)
            lines.append(Line(day=u.day, at=last.created_at if last else start_of(u.day), sort_id=u.last_entry_id,
                              amount=u.amount, balance_after=last.balance_after if last else None, usage=u))
    for e in singles:
        if e.created_at.astimezone(UTC).date() in wanted:
            lines.append(Line(day=e.created_at.astimezone(UTC).date(), at=e.created_at, sort_id=e.pk,
                              amount=e.amount, balance_after=e.balance_after, entry=e))
    lines.sort(key=lambda line: (line.day, line.sort_id), reverse=True)
    return LinesPage(lines, shown[-1] if more and shown else None)


def day_entries(org, day: date, before_id: int | None = None, size: int = 50) -> tuple[list[LedgerEntry], int | None]:
    """One UTC day's entries of every kind, newest first, `size` at a time after `before_id`;
    returns them and the cursor of the next page (None on the last). The day's id range
    (from its usage line and its few single entries) lets the (account, -id) index read
    just that day instead of walking back from the newest entry."""
    account = account_of(org)
    if account is None:
        return [], None
    start, end = start_of(day), start_of(day + timedelta(days=1))
    of_day = LedgerEntry.objects.filter(account_id=account.pk, created_at__gte=start, created_at__lt=end)
    bounds = [pk for pk in of_day.exclude(kind=LedgerEntry.Kind.USAGE).values_list("pk", flat=True)]
    usage = LedgerUsageDay.objects.filter(account_id=account.pk, day=day).first()
    if usage is not None:
        bounds += [usage.first_entry_id, usage.last_entry_id]
    if not bounds:
        return [], None
    entries = of_day.filter(pk__gte=min(bounds), pk__lte=max(bounds)).order_by("-id")
    if before_id is not None:
        entries = entries.filter(pk__lt=before_id)
    rows = list(entries[:size + 1])
    return rows[:size], rows[size - 1].pk if len(rows) > size else None
