"""Proration of monthly prices: the first (or a changed) month is charged by the day.

Decision: billing periods are calendar months in the account's own time zone. A price that
starts mid-month is charged now for the days left in the month, today included:

    charge = monthly price x days left / days in the month   (rounded once, half-up)

The period key (`YYYY-MM`) is the one the monthly recurring charge uses, so the recurring run
for the same month finds the key taken and charges nothing twice.
"""
import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from app.timezones import today_in

from app import money


@dataclass(frozen=True)
class Proration:
    monthly: Decimal         # the full monthly amount
    amount: Decimal          # what is charged now
    days_left: int
    days_in_month: int
    period: str              # YYYY-MM

    @property
    def is_full_month(self) -> bool:
        return self.days_left == self.days_in_month


def local_today(tz_name: str | None) -> date:
    return today_in(tz_name)


def period_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def prorate(monthly, day: date, currency: str = "USD") -> Proration:
    monthly = money.to_decimal(monthly)
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    days_left = days_in_month - day.day + 1
    amount = money.quantize(monthly * days_left / days_in_month, currency)
    return Proration(monthly=money.quantize(monthly, currency), amount=amount, days_left=days_left,
                     days_in_month=days_in_month, period=period_key(day))


def prorate_in_period(monthly, period, day: date, currency: str = "USD") -> Proration:
    """A price per billing period (app/billing/schedule.py `Period`), for the days of the period
    left on `day`, that day included: what a user-count change charges or credits now.
    The same rule as `prorate`, over the account's own period instead of the calendar month,
    so that a change charges or credits exactly the part of the period the run charged or will
    charge (a day-1 monthly account: the calendar month, as before)."""
    monthly = money.to_decimal(monthly)
    days, days_left = period.days, (period.end - day).days
    if not 0 < days_left <= days:
        raise ValueError(f"{day} is not in the period {period.key}")
    amount = money.quantize(monthly * days_left / days, currency)
    return Proration(monthly=money.quantize(monthly, currency), amount=amount, days_left=days_left,
                     days_in_month=days, period=period.key)
