"""The calendar periods a key's spend limit can apply to, in UTC.

Pure functions, no database or clock of their own: the caller passes ``now`` so the live
store, the key pages and the alerts all agree on one boundary and a test can move time.
A day starts at 00:00 UTC, a week on Monday 00:00 UTC, a month on the 1st at 00:00 UTC.
"""
from datetime import datetime, timedelta, timezone

NONE, DAILY, WEEKLY, MONTHLY = "none", "daily", "weekly", "monthly"
PERIODS = (NONE, DAILY, WEEKLY, MONTHLY)


def _as_utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("period_bounds needs an aware datetime")
    return now.astimezone(timezone.utc)


def period_bounds(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(start, end) of the period holding ``now``: start inclusive, end exclusive.

    ``none`` is one period for all time: (None, None).
    """
    if period in (NONE, "", None):
        return None, None
    now = _as_utc(now)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == DAILY:
        return midnight, midnight + timedelta(days=1)
    if period == WEEKLY:
        start = midnight - timedelta(days=midnight.weekday())
        return start, start + timedelta(days=7)
    if period == MONTHLY:
        start = midnight.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValueError(f"unknown budget period {period!r}")


def period_id(period: str, now: datetime) -> str:
    """A short name for the period holding ``now`` (its start as UTC seconds; "all" for none).

    The live store keeps it beside a key's spend counter, so a new period starts from zero.
    """
    start, _ = period_bounds(period, now)
    return "all" if start is None else str(int(start.timestamp()))
