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


def expire_due_accounts(now: datetime) -> list[int]:
    """Active accounts past their expiry become *expired*: status, history, a letter when the
    account's email alerts are on, and a notice to the AMI watchers, which hang up its live calls
    at once (they already stop them at the expiry time; this also covers a watcher that was
    down then). The status moves by one UPDATE ... WHERE status = 'active', so two sweeps expire
    an account once. Flushes only; the caller commits. Returns the ids expired now."""
    from sqlalchemy import select, update

    from app import audit
    from app.accounts.models import Account
    from app.calls import live
    from app.extensions import db

    candidates = db.session.execute(select(Account).where(Account.status == "active",
                                                          Account.expiry_mode != "none")).scalars().all()
    expired = []
    for account in candidates:
        expires = expiry_of(account, now)
        if expires is None or now < expires:
            continue
        moved = db.session.execute(update(Account).where(Account.id == account.id, Account.status == "active")
                                   .values(status="expired",
                                           version=Account.version + 1)
                                   .execution_options(synchronize_session=False))
        if not moved.rowcount:
            continue
        db.session.refresh(account)
        audit.record("account.expired", account, expired_at=expires.isoformat(sep=" ", timespec="minutes"))
        live.announce(account.account_number)
        if account.email_alerts:
            from app.notifications.outbox import queue_email, render_template

            queue_email(tenant_id=account.tenant_id, account_id=account.id, to=account.email, kind="expired",
                        subject=f"Account {account.account_number} has expired",
                        body=render_template("email/expired.txt", account=account,
                                             expired=expires.strftime("%Y-%m-%d %H:%M UTC")))
        expired.append(account.id)
    return expired
