"""Extras' occurrences in a billing period (pure date arithmetic)."""
from datetime import date

import pytest

from app.billing.cycle import targets_of_key, users_at
from app.billing.extras import occurrence, occurrences_between

JAN = (date(2027, 1, 1), date(2027, 2, 1))


@pytest.mark.parametrize("period,start,end,expected", [
    ("monthly", date(2026, 12, 5), None, 1),        # Jan 5
    ("monthly", date(2027, 2, 1), None, 0),         # starts after January
    ("monthly", date(2026, 1, 1), date(2026, 12, 31), 0),   # ended before
    ("weekly", date(2026, 12, 31), None, 4),        # Jan 7, 14, 21, 28
    ("weekly", date(2027, 1, 1), None, 5),          # Jan 1, 8, 15, 22, 29
    ("daily", date(2026, 11, 1), None, 31),
    ("daily", date(2027, 1, 10), date(2027, 1, 19), 10),    # both ends inclusive
    ("yearly", date(2025, 1, 20), None, 1),
    ("yearly", date(2025, 6, 20), None, 0),
])
def test_occurrences_in_january(period, start, end, expected):
    assert occurrences_between(start, end, period, *JAN) == expected


def test_monthly_and_yearly_keep_the_start_day_or_the_last_day_of_a_shorter_month():
    assert [occurrence(date(2027, 1, 31), "monthly", n) for n in range(4)] == [
        date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]
    assert occurrence(date(2028, 2, 29), "yearly", 1) == date(2029, 2, 28)
    assert occurrences_between(date(2027, 1, 31), None, "monthly", date(2027, 2, 15), date(2027, 3, 15)) == 1


def test_a_key_names_the_accounts_whose_period_it_is():
    assert [(s, d, p.start, p.end) for s, d, p in targets_of_key("2027-01")] == [
        ("monthly", 1, date(2027, 1, 1), date(2027, 2, 1))]
    assert [(s, d, p.end) for s, d, p in targets_of_key("2027-01-15")] == [
        ("daily", None, date(2027, 1, 16)), ("monthly", 15, date(2027, 2, 15))]
    assert [s for s, _, _ in targets_of_key("2027-01-30")] == ["daily"]     # no billing day 30
    assert [s for s, _, _ in targets_of_key("2027-01-01")] == ["daily"]     # day 1 is keyed YYYY-MM
    for bad in ("2027-1", "2027-13", "yesterday", "2027-02-30"):
        with pytest.raises(ValueError):
            targets_of_key(bad)


def test_the_user_count_at_the_period_start_is_the_one_before_the_first_later_change():
    from datetime import datetime

    start = datetime(2027, 1, 1)
    changes = [(datetime(2026, 12, 10), 1), (datetime(2027, 1, 5), 3), (datetime(2027, 1, 9), 5)]
    assert users_at(7, changes, start) == 3
    assert users_at(7, changes, datetime(2027, 1, 10)) == 7
    assert users_at(2, [], start) == 2
