"""Billing schedule: period starts and keys at several billing days and across midnight."""
from datetime import date, datetime, timezone

import pytest

from app.billing.proration import period_key, prorate
from app.billing.schedule import check_billing_day, current_period, period_containing


@pytest.mark.parametrize("day", [date(2026, 1, 1), date(2026, 2, 15), date(2026, 12, 31)])
def test_billing_day_1_keeps_the_yyyy_mm_key_proration_already_uses(day):
    period = period_containing(day, "monthly", 1)
    assert period.key == period_key(day) == prorate("10", day).period
    assert period.start == date(day.year, day.month, 1)


@pytest.mark.parametrize("day, billing_day, start, end", [
    (date(2026, 3, 14), 15, date(2026, 2, 15), date(2026, 3, 15)),
    (date(2026, 3, 15), 15, date(2026, 3, 15), date(2026, 4, 15)),
    (date(2026, 1, 10), 28, date(2025, 12, 28), date(2026, 1, 28)),
    (date(2026, 12, 31), 28, date(2026, 12, 28), date(2027, 1, 28)),
])
def test_a_monthly_period_runs_from_billing_day_to_billing_day(day, billing_day, start, end):
    period = period_containing(day, "monthly", billing_day)
    assert (period.start, period.end, period.key) == (start, end, start.isoformat())


def test_a_daily_period_is_the_day():
    period = period_containing(date(2026, 2, 28), "daily")
    assert (period.start, period.end, period.key, period.days) == (date(2026, 2, 28), date(2026, 3, 1), "2026-02-28", 1)


def test_the_period_follows_the_accounts_midnight_not_utcs():
    now = datetime(2026, 3, 1, 2, 30, tzinfo=timezone.utc)      # 1 March in UTC, 28 Feb in New York
    assert current_period("UTC", now=now).key == "2026-03"
    assert current_period("America/New_York", now=now).key == "2026-02"
    assert current_period("Asia/Tokyo", "daily", now=datetime(2026, 2, 28, 15, 30, tzinfo=timezone.utc)).key == "2026-03-01"
    assert current_period("Not/AZone", now=now).key == "2026-03"


@pytest.mark.parametrize("bad", [0, 29, 31, -1])
def test_a_billing_day_outside_1_to_28_is_refused(bad):
    with pytest.raises(ValueError, match="between 1 and 28"):
        check_billing_day(bad)
