"""Billing schedule: which period an account is in, and that period's key.

An account is billed monthly on a billing day (1-28, default 1) or daily, in its own time
zone. A period's key comes from its start date:
- monthly on day 1: `YYYY-MM`, the key proration (app/billing/proration.py) and onboarding
  already use, so accounts created before billing days existed are not charged twice;
- monthly on another day, and daily: the start date, `YYYY-MM-DD`.
Pure functions: no database.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from app.timezones import zone

SCHEDULES = ("monthly", "daily")
MIN_DAY, MAX_DAY = 1, 28   # 28: every month has the day, so no period is skipped or doubled


@dataclass(frozen=True)
class Period:
    start: date
    end: date        # exclusive: the next period's start
    key: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def check_billing_day(day) -> int:
    day = int(day)
    if not MIN_DAY <= day <= MAX_DAY:
        raise ValueError(f"The billing day is between {MIN_DAY} and {MAX_DAY}.")
    return day


def _add_months(day: date, months: int) -> date:
    m = day.month - 1 + months
    return date(day.year + m // 12, m % 12 + 1, day.day)   # day <= 28: always valid


def period_containing(day: date, schedule: str = "monthly", billing_day: int = 1) -> Period:
    if schedule == "daily":
        return Period(day, day + timedelta(days=1), day.isoformat())
    if schedule != "monthly":
        raise ValueError(f"unknown billing schedule {schedule!r}")
    billing_day = check_billing_day(billing_day)
    start = date(day.year, day.month, billing_day)
    if day < start:
        start = _add_months(start, -1)
    key = f"{start.year:04d}-{start.month:02d}" if billing_day == 1 else start.isoformat()
    return Period(start, _add_months(start, 1), key)


def local_date(tz_name: str | None, now: datetime | None = None) -> date:
    """Today in the account's time zone (UTC if the zone is unknown)."""
    tz = zone(tz_name)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(tz).date()


def current_period(tz_name: str | None, schedule: str = "monthly", billing_day: int = 1,
                   now: datetime | None = None) -> Period:
    return period_containing(local_date(tz_name, now), schedule, billing_day)
