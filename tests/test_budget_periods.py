"""The UTC calendar a key's budget period follows: pure functions, no clock of their own."""
from datetime import datetime, timedelta, timezone

import pytest

from billing.budget_periods import period_bounds, period_id

UTC = timezone.utc


def at(*args):
    return datetime(*args, tzinfo=UTC)


def test_none_is_one_period_for_all_time():
    assert period_bounds("none", at(2026, 3, 4, 5)) == (None, None)
    assert period_id("none", at(2026, 3, 4, 5)) == "all"


def test_a_day_runs_from_midnight_utc_to_the_next():
    assert period_bounds("daily", at(2026, 3, 4, 23, 59, 59)) == (at(2026, 3, 4), at(2026, 3, 5))
    assert period_bounds("daily", at(2026, 3, 5)) == (at(2026, 3, 5), at(2026, 3, 6))


def test_a_week_starts_on_monday_midnight_utc():
    # 2026-12-31 is a Thursday; its week ran from Monday 28 December into January.
    assert period_bounds("weekly", at(2026, 12, 31, 12)) == (at(2026, 12, 28), at(2027, 1, 4))
    assert period_bounds("weekly", at(2026, 12, 28)) == (at(2026, 12, 28), at(2027, 1, 4))
    assert period_bounds("weekly", at(2026, 12, 27, 23, 59)) == (at(2026, 12, 21), at(2026, 12, 28))


@pytest.mark.parametrize("now, start, end", [
    (at(2026, 1, 31, 23), at(2026, 1, 1), at(2026, 2, 1)),
    (at(2028, 2, 29, 1), at(2028, 2, 1), at(2028, 3, 1)),
    (at(2026, 12, 31, 23, 59), at(2026, 12, 1), at(2027, 1, 1)),
    (at(2027, 1, 1), at(2027, 1, 1), at(2027, 2, 1)),
])
def test_a_month_starts_on_the_first(now, start, end):
    assert period_bounds("monthly", now) == (start, end)


def test_other_time_zones_are_read_in_utc():
    tokyo = timezone(timedelta(hours=9))
    # 08:00 on the 5th in Tokyo is still the 4th in UTC.
    assert period_bounds("daily", datetime(2026, 3, 5, 8, tzinfo=tokyo)) == (at(2026, 3, 4), at(2026, 3, 5))


def test_a_naive_time_or_an_unknown_period_is_refused():
    with pytest.raises(ValueError):
        period_bounds("daily", datetime(2026, 3, 4))
    with pytest.raises(ValueError):
        period_bounds("yearly", at(2026, 3, 4))


def test_the_period_id_changes_exactly_at_the_boundary():
    before, after = at(2026, 3, 4, 23, 59, 59, 999999), at(2026, 3, 5)
    assert period_id("daily", before) != period_id("daily", after)
    assert period_id("monthly", before) == period_id("monthly", after)
