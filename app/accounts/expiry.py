"""When an account stops placing calls (seed 001's three expiry modes): through a date in its
own time zone, N days after its first call, or N days after its creation."""
from datetime import datetime, timedelta

from app.timezones import local_midnight_utc


def expiry_of(account, now: datetime | None = None) -> datetime | None:
    """When the account stops placing calls (naive UTC), or None if it does not expire (yet)."""
    mode = account.expiry_mode or "none"
    if mode == "date" and account.expiry_date is not None:
        # Calls are allowed through the expiry date, in the account's own time zone.
        return local_midnight_utc(account.expiry_date + timedelta(days=1), account.timezone)
    if account.expiry_days is None:
        return None
    if mode == "days_after_first_use":
        start = account.first_used_at
        return None if start is None else start + timedelta(days=account.expiry_days)
    if mode == "days_after_creation" and account.created_at is not None:
        return account.created_at + timedelta(days=account.expiry_days)
    return None
