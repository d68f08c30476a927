"""Automatic alerts (seed 002 "Notification setting"): low balance, zero balance and expiry soon,
each sent once when its condition starts (a *crossing*), then, if the account asks, again every
hour or every day while it lasts, for at most N days; re-armed only when the condition ends
(the balance rises back above the level). A sweep (cron, every 5 minutes) finds them, so every
debit path counts (the CDR writer's COPY as much as a manual debit). A sign-in notification
goes when a customer portal login signs in, if the account asks.

Each honours the account's settings: `email_alerts` (off: none of these), the separate alert
address (AccountDetails.low_balance_email, else the account's email), `alert_schedule`
(once | hourly | daily) and `alert_stop_days`. State per account and kind in `account_alerts`
(unique): two sweeps at once send one letter. Flushes only; the caller commits.
"""
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.details import AccountDetails
from app.accounts.expiry import expiry_of
from app.accounts.models import Account
from app.extensions import db
from app.notifications.outbox import queue_email, render_template, _portal_url
from tenants.mixins import AccountOwned

KINDS = ("low_balance", "zero_balance", "expiry_soon")
SCHEDULES = {"once": None, "hourly": timedelta(hours=1), "daily": timedelta(days=1)}
EXPIRY_NOTICE = timedelta(days=7)       # "expiry soon": this long before the account expires
SUBJECTS = {
    "low_balance": "Low balance on account {number}",
    "zero_balance": "Account {number}: the balance is used up",
    "expiry_soon": "Account {number} expires on {expires}",
}


class AccountAlert(AccountOwned, db.Model):
    """An alert condition in force: sent when it started, maybe repeated; deleted when it ends."""
    __tablename__ = "account_alerts"
    __table_args__ = (UniqueConstraint("account_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    since: Mapped[datetime] = mapped_column()
    last_sent_at: Mapped[datetime] = mapped_column()
    sent: Mapped[int] = mapped_column(default=1)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"))


def _conditions(now: datetime) -> dict[str, set[int]]:
    """{kind: ids of the accounts (alerts on, not closed) for which it holds now}."""
    base = select(Account.id).where(Account.email_alerts.is_(True), Account.status != "closed")
    low = set(db.session.execute(base.where(Account.low_balance_threshold > 0,
                                            Account.available_credit < Account.low_balance_threshold)).scalars())
    zero = set(db.session.execute(base.where(Account.available_credit <= 0)).scalars())
    soon = set()
    for account in db.session.execute(select(Account).where(Account.id.in_(base.where(Account.expiry_mode != "none"))
                                                            )).scalars():
        expires = expiry_of(account, now)
        if expires is not None and now < expires <= now + EXPIRY_NOTICE:
            soon.add(account.id)
    return {"low_balance": low - zero, "zero_balance": zero, "expiry_soon": soon}


def _send(account: Account, kind: str, now: datetime):
    details = db.session.execute(select(AccountDetails).where(AccountDetails.account_id == account.id)).scalar_one_or_none()
    to = (details.low_balance_email if details and details.low_balance_email else account.email)
    expires = expiry_of(account, now)
    body = render_template(f"email/{kind}.txt", account=account, portal_url=_portal_url(),
                           expires=expires.strftime("%Y-%m-%d %H:%M UTC") if expires else "")
    return queue_email(tenant_id=account.tenant_id, account_id=account.id, to=to, kind=kind, body=body,
                       subject=SUBJECTS[kind].format(number=account.account_number,
                                                     expires=expires.strftime("%Y-%m-%d") if expires else ""))


def sweep(now: datetime) -> dict:
    """Send what is due at `now` (naive UTC): first letters of new conditions, reminders by
    schedule; forget conditions that ended. Returns counts."""
    holding = _conditions(now)
    out = {"sent": 0, "reminded": 0, "rearmed": 0}
    for kind in KINDS:
        ids = holding[kind]
        gone = delete(AccountAlert).where(AccountAlert.kind == kind)
        if ids:
            gone = gone.where(AccountAlert.account_id.not_in(ids))
        out["rearmed"] += db.session.execute(gone.execution_options(synchronize_session=False)).rowcount or 0
        if not ids:
            continue
        known = {a.account_id: a for a in db.session.execute(
            select(AccountAlert).where(AccountAlert.kind == kind, AccountAlert.account_id.in_(ids))).scalars()}
        accounts = {a.id: a for a in db.session.execute(select(Account).where(Account.id.in_(ids))).scalars()}
        schedules = {r[0]: (r[1], r[2]) for r in db.session.execute(
            select(AccountDetails.account_id, AccountDetails.alert_schedule, AccountDetails.alert_stop_days)
            .where(AccountDetails.account_id.in_(ids))).all()}
        for account_id in sorted(ids):
            account = accounts[account_id]
            state = known.get(account_id)
            if state is None:
                try:
                    with db.session.begin_nested():     # another sweep got there first: it sent it
                        n = _send(account, kind, now)
                        db.session.add(AccountAlert(tenant_id=account.tenant_id, account_id=account_id, kind=kind,
                                                    since=now, last_sent_at=now, sent=1, notification_id=n.id))
                        db.session.flush()
                except IntegrityError:
                    continue
                out["sent"] += 1
                continue
            schedule, stop_days = schedules.get(account_id, ("once", 0))
            every = SCHEDULES.get(schedule or "once")
            if every is None or now - state.last_sent_at < every:
                continue
            if stop_days and now - state.since >= timedelta(days=stop_days):
                continue
            claimed = db.session.execute(
                update(AccountAlert).where(AccountAlert.id == state.id, AccountAlert.last_sent_at == state.last_sent_at)
                .values(last_sent_at=now, sent=AccountAlert.sent + 1).execution_options(synchronize_session=False))
            if claimed.rowcount:
                _send(account, kind, now)
                out["reminded"] += 1
    return out


def signin_notice(user, ip: str, now: datetime):
    """A customer portal login signed in: tell the account, if it asks (AccountDetails)."""
    if not user.account_id:
        return None
    details = db.session.execute(select(AccountDetails).where(AccountDetails.account_id == user.account_id)
                                 ).scalar_one_or_none()
    if details is None or not details.signin_notification:
        return None
    account = db.session.get(Account, user.account_id)
    body = render_template("email/signin.txt", account=account, login=user, ip=ip or "unknown",
                           when=now.strftime("%Y-%m-%d %H:%M UTC"), portal_url=_portal_url())
    return queue_email(tenant_id=account.tenant_id, account_id=account.id,
                       to=details.low_balance_email or account.email, kind="signin",
                       subject=f"New sign-in to the portal of account {account.account_number}", body=body)
