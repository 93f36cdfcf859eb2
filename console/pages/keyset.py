"""Keyset ("cursor") pages over rows ordered newest first by (created_at, id).

A page number makes the database count and skip every row before it (OFFSET): page 100,000
of ten million records took seconds. A cursor names the last row seen instead, so any page
is one index range read, and rows that arrive meanwhile never shift a page. The price: no
"page N of M" and no jumping to page N; the links are Newest, Newer and Older, and filters
(a day, a key) are how one goes far back at once.

A cursor is "<microseconds since the epoch>.<id>" of the row it continues from, with
`before` (older rows) or `after` (newer rows); a malformed one reads as the first page.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cursor_of(row) -> str:
    delta = row.created_at - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}.{row.pk}"


def parse_cursor(text: str | None) -> tuple[datetime, int] | None:
    try:
        micros, pk = (int(part) for part in (text or "").split("."))
        return EPOCH + timedelta(microseconds=micros), pk
    except (ValueError, OverflowError):
        return None


@dataclass
class KeysetPage:
    object_list: list
    newer: str | None  # cursor for `after`, None on the newest page
    older: str | None  # cursor for `before`, None on the oldest page

    def __iter__(self):
        return iter(self.object_list)

    @property
    def has_other_pages(self) -> bool:
        return bool(self.newer or self.older)


def keyset_page(records, params, size: int) -> KeysetPage:
    """The page of `records` (newest first by created_at then id) that `params` asks for."""
    after, before = parse_cursor(params.get("after")), parse_cursor(params.get("before"))
    if after is not None:
        at, pk = after
        # Equal times are told apart by id: no row is skipped or shown twice.
        rows = list(records.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk), created_at__gte=at)
                    .order_by("created_at", "id")[:size + 1])
        if rows:  # nothing newer (the newest rows were deleted meanwhile): the first page
            more_newer = len(rows) > size
            rows = rows[:size][::-1]
            return KeysetPage(rows, cursor_of(rows[0]) if more_newer else None, cursor_of(rows[-1]))
    elif before is not None:
        at, pk = before
        records = records.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk), created_at__lte=at)
    rows = list(records.order_by("-created_at", "-id")[:size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return KeysetPage(rows, cursor_of(rows[0]) if rows and before is not None else None,
                      cursor_of(rows[-1]) if more_older else None)
