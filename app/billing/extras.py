"""Extras: recurring charges a reseller adds to an account (seed 000, "Extras").

An extra has a description, an amount, its own charge period (daily, weekly, monthly, yearly),
a start date and an optional end date (both inclusive, in the account's time zone).
Its occurrences are the start date plus whole periods (monthly and yearly keep the start's day,
the last day of a shorter month standing in for a missing 29-31). Each billing period of the
account is charged, at its start, the occurrences that fall inside it: one charge per extra and
billing period, `amount x occurrences`, keyed `account:<id>:extra:<extra id>:<period key>`
(app/billing/cycle.py). An extra added mid-period is charged at once for the occurrences left
in the current period, under that same key, so the period run finds it taken.
Flush, never commit.
"""
import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Numeric, String, select
from sqlalchemy.orm import Mapped, mapped_column

from app import audit, money
from app.conflicts import FieldError
from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import AccountOwned
from tenants.models import utcnow

PERIODS = ("daily", "weekly", "monthly", "yearly")
MAX_OCCURRENCES = 400    # a daily extra in the longest billing period (a month) is 31


class Extra(AccountOwned, db.Model):
    __tablename__ = "billing_extras"

    id: Mapped[int] = mapped_column(primary_key=True)
    description: Mapped[str] = mapped_column(String(120))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE))
    period: Mapped[str] = mapped_column(String(10))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _shift_months(start: date, months: int) -> date:
    m = start.month - 1 + months
    year, month = start.year + m // 12, m % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def occurrence(start: date, period: str, n: int) -> date:
    if period == "daily":
        return start + timedelta(days=n)
    if period == "weekly":
        return start + timedelta(weeks=n)
    if period == "monthly":
        return _shift_months(start, n)
    if period == "yearly":
        return _shift_months(start, 12 * n)
    raise ValueError(f"unknown extra period {period!r}")


def occurrences_between(start: date, end: date | None, period: str, window_start: date, window_end: date) -> int:
    """How many occurrences of an extra fall in [window_start, window_end) (end exclusive)."""
    last = window_end - timedelta(days=1)
    if end is not None and end < last:
        last = end
    if last < window_start or last < start:
        return 0
    # Skip ahead close to the window, then count (periods are at least a day).
    step_days = {"daily": 1, "weekly": 7, "monthly": 28, "yearly": 365}[period]
    n = max(0, (window_start - start).days // step_days - 1)
    count = 0
    while True:
        day = occurrence(start, period, n)
        if day > last:
            return count
        if day >= window_start:
            count += 1
            if count > MAX_OCCURRENCES:
                return count
        n += 1


def extras_of(account_id: int, *, include_ended: bool = True) -> list[Extra]:
    q = select(Extra).where(Extra.account_id == account_id)
    return [x for x in db.session.execute(q.order_by(Extra.start_date, Extra.id)).scalars()
            if include_ended or x.end_date is None or x.end_date >= x.start_date]


def check_extra(*, description: str, amount, period: str, start_date, end_date, currency: str):
    """Validate an extra's fields: FieldError names the field."""
    description = " ".join((description or "").split())
    if not description:
        raise FieldError("description", "Say what the extra is for: the description appears on the statement.")
    if len(description) > 120:
        raise FieldError("description", "At most 120 characters.")
    if period not in PERIODS:
        raise FieldError("period", "Choose daily, weekly, monthly or yearly.")
    try:
        amount = money.parse_amount(amount, currency) if isinstance(amount, str) else money.to_decimal(amount)
    except money.MoneyError as e:
        raise FieldError("amount", str(e)) from None
    except (TypeError, ValueError):
        raise FieldError("amount", "Enter an amount such as 9.95.") from None
    if amount <= 0:
        raise FieldError("amount", "Enter an amount above zero.")
    amount = money.quantize(amount, currency)
    if not isinstance(start_date, date):
        raise FieldError("start_date", "Enter the first day the extra is charged.")
    if end_date is not None and end_date < start_date:
        raise FieldError("end_date", "The end date cannot be before the start date.")
    return description, amount, period, start_date, end_date


def add_extra(account, *, description: str, amount, period: str, start_date: date, end_date: date | None = None,
              created_by_id: int | None = None) -> Extra:
    """Add an extra and charge what falls in the current billing period at once."""
    from app.billing import cycle

    if account.status == "closed":
        raise FieldError(None, "This account is closed.")
    description, amount, period, start_date, end_date = check_extra(
        description=description, amount=amount, period=period, start_date=start_date, end_date=end_date,
        currency=account.currency)
    extra = Extra(tenant_id=account.tenant_id, account_id=account.id, description=description, amount=amount,
                  period=period, start_date=start_date, end_date=end_date, created_by_id=created_by_id)
    db.session.add(extra)
    db.session.flush()
    audit.record("extra.added", extra, account_id=account.id, description=description, amount=str(amount),
                 period=period, start=start_date.isoformat(), end=end_date.isoformat() if end_date else None)
    cycle.charge_new_extra(account, extra, created_by_id=created_by_id)
    return extra


def end_extra(account, extra: Extra, end_date: date) -> Extra:
    """Stop an extra after `end_date` (inclusive). Charges already taken stay."""
    if extra.account_id != account.id:
        raise FieldError(None, "This extra is not on this account.")
    if not isinstance(end_date, date):
        raise FieldError("end_date", "Enter the last day the extra is charged.")
    if end_date < extra.start_date:
        raise FieldError("end_date", f"The end date cannot be before the start date ({extra.start_date:%Y-%m-%d}).")
    old = extra.end_date
    extra.end_date = end_date
    db.session.flush()
    audit.record("extra.ended", extra, account_id=account.id, description=extra.description,
                 old=old.isoformat() if old else None, new=end_date.isoformat())
    return extra
