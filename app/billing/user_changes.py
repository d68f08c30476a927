"""Scheduled user-count decreases (issue 16, point 4; docs/billing-cycle.md "User-count changes").

A decrease takes effect at the start of the account's next billing period, unless its reseller
lets decreases apply at once with a prorated credit (`Tenant.user_decrease_immediate`, set on
/reseller/settings; app/billing/plans.py `apply_user_change` decides). Until then it is a
`scheduled_user_changes` row, shown on the reseller's account page and the customer portal's
users page, where either side can cancel it.

- One scheduled change per account (a partial unique index): a second decrease *replaces* the
  first; an increase, or a decrease applied at once, replaces it too (the account keeps the
  count it asked for last). Closing the account cancels it.
- The period run applies it (`apply_due`, called by app/billing/cycle.py `charge_batch` for the
  accounts it has locked, before their charges), in the transaction that charges the period:
  the newest extensions go (their numbers stay on the account, unattached), the plan gets the
  new count, a processed `users` order records the change *effective at the period start*, so
  the period's users charge (`cycle.users_at`) uses the new count. The row goes from
  `scheduled` to `applied` in that same transaction, under the account's row lock: a period
  run twice, two workers racing, or a retried job never applies it twice; a killed worker
  rolls it back with the batch, and the next run applies it.
- Every writer holds the account's row lock (`lock_account`, FOR NO KEY UPDATE, as the run
  takes it), so a request and the run never interleave on one account.
Flush, never commit.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, String, select, text
from sqlalchemy.orm import Mapped, mapped_column

from app import audit
from app.accounts.models import Account
from app.billing.schedule import Period, current_period, period_containing
from app.conflicts import FieldError, flush_or_conflict
from app.extensions import db
from app.timezones import local_midnight_utc
from tenants.mixins import AccountOwned
from tenants.models import utcnow

STATUSES = ("scheduled", "applied", "cancelled", "replaced")
STATUS_WORDS = {"applied": "already applied", "cancelled": "cancelled", "replaced": "replaced by a later change"}


class ScheduledUserChange(AccountOwned, db.Model):
    """A user-count decrease waiting for the start of the account's next billing period."""
    __tablename__ = "scheduled_user_changes"
    __table_args__ = (
        # At most one waiting change per account: a second one replaces the first.
        Index("uq_scheduled_user_changes_waiting", "account_id", unique=True,
              postgresql_where=text("status = 'scheduled'"), sqlite_where=text("status = 'scheduled'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    from_users: Mapped[int] = mapped_column()           # the count when it was scheduled
    to_users: Mapped[int] = mapped_column()
    effective_on: Mapped[date] = mapped_column(Date)    # first day of the period, in the account's zone
    period: Mapped[str] = mapped_column(String(10))     # that period's key
    status: Mapped[str] = mapped_column(String(10), default="scheduled")
    note: Mapped[str] = mapped_column(String(120), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column()
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))

    @property
    def removed(self) -> int:
        return max(self.from_users - self.to_users, 0)


def lock_account(account_id: int) -> Account:
    """The account's row, locked FOR NO KEY UPDATE (the period run's lock) and read afresh."""
    return db.session.execute(select(Account).where(Account.id == account_id).with_for_update(key_share=True)
                              .execution_options(populate_existing=True)).scalar_one()


def pending_change(account_id: int) -> ScheduledUserChange | None:
    return db.session.execute(select(ScheduledUserChange).where(
        ScheduledUserChange.account_id == account_id, ScheduledUserChange.status == "scheduled")
        .execution_options(populate_existing=True)).scalar_one_or_none()


def next_period(account, now: datetime | None = None) -> Period:
    """The account's billing period after the current one: where a decrease takes effect."""
    current = current_period(account.timezone, account.billing_schedule, account.billing_day, now)
    return period_containing(current.end, account.billing_schedule, account.billing_day)


def _close(change: ScheduledUserChange, status: str, note: str, by_id: int | None) -> None:
    change.status, change.note = status, note[:120]
    change.closed_at, change.closed_by_id = utcnow(), by_id


def schedule(account, plan, to_users: int, effective_on: date, period_key: str, *,
             created_by_id: int | None = None) -> ScheduledUserChange:
    """Schedule a decrease to `to_users` from `effective_on`, the first day of the period
    `period_key`; it replaces a waiting one. The caller holds the account's lock and checked the
    count (plans.quote_user_change)."""
    old = pending_change(account.id)
    if old is not None:
        _close(old, "replaced", f"replaced by a change to {to_users} users", created_by_id)
        db.session.flush()                      # the waiting slot (partial unique index) is free
    change = ScheduledUserChange(tenant_id=account.tenant_id, account_id=account.id, from_users=plan.users,
                                 to_users=to_users, effective_on=effective_on, period=period_key,
                                 status="scheduled", created_by_id=created_by_id)
    db.session.add(change)
    flush_or_conflict()
    audit.record("plan.users_change_scheduled", change, account_id=account.id, before=plan.users, after=to_users,
                 effective_on=effective_on.isoformat(), period=period_key,
                 replaces=old.id if old is not None else None)
    return change


def replace_pending(account, note: str, *, by_id: int | None = None) -> ScheduledUserChange | None:
    """A change applied now (an increase, or a decrease at once) replaces the waiting one."""
    old = pending_change(account.id)
    if old is not None:
        _close(old, "replaced", note, by_id)
        audit.record("plan.users_change_replaced", old, account_id=account.id, before=old.from_users,
                     after=old.to_users, effective_on=old.effective_on.isoformat(), note=note)
    return old


def cancel(account, change: ScheduledUserChange, *, by_id: int | None = None, note: str = "cancelled"
           ) -> ScheduledUserChange:
    """Cancel a waiting change (the account keeps its users). Locks the account first."""
    lock_account(account.id)
    db.session.refresh(change)
    if change.account_id != account.id:
        raise LookupError("not this account's change")
    if change.status != "scheduled":
        raise FieldError(None, f"This change to {change.to_users} users was {STATUS_WORDS[change.status]}; "
                               "nothing was cancelled.")
    _close(change, "cancelled", note, by_id)
    audit.record("plan.users_change_cancelled", change, account_id=account.id, before=change.from_users,
                 after=change.to_users, effective_on=change.effective_on.isoformat(), note=note)
    db.session.flush()
    return change


def cancel_on_close(account) -> None:
    """Closing the account: a waiting change has nothing left to apply to."""
    old = pending_change(account.id)
    if old is not None:
        cancel(account, old, note="the account was closed")


@dataclass(frozen=True)
class Waiting:
    """A waiting change as both portals show it."""
    change: ScheduledUserChange
    leaving: list[str]           # the extensions it removes (the newest), as things stand now
    users_charge_after: Decimal  # users x cost per user from its period on


def leaving_extensions(account, count: int) -> list[str]:
    """The numbers of the extensions a decrease by `count` removes: the newest."""
    from provisioning import extensions

    return [e.number for e in extensions.newest_extensions(account, count)] if count > 0 else []


def waiting(account, plan) -> Waiting | None:
    from app import money

    change = pending_change(account.id)
    if change is None or plan is None:
        return None
    return Waiting(change, leaving_extensions(account, plan.users - change.to_users),
                   money.quantize(money.to_decimal(plan.cost_per_user) * change.to_users, account.currency))


# --- the period run ------------------------------------------------------------------------------

def due_for(accounts, periods: dict) -> dict[int, ScheduledUserChange]:
    """The waiting changes of these (locked) accounts that take effect by the start of the
    period the run charges them for (`periods`: schedule -> Period). A change whose day is
    later waits for a later run; one whose day has passed (the account's billing day moved)
    is applied by the next run, never before its day."""
    by_id = {a.id: a for a in accounts}
    if not by_id:
        return {}
    due = {}
    for change in db.session.execute(select(ScheduledUserChange).where(
            ScheduledUserChange.account_id.in_(sorted(by_id)), ScheduledUserChange.status == "scheduled")
            .execution_options(populate_existing=True)).scalars():
        period = periods.get(by_id[change.account_id].billing_schedule)
        if period is not None and change.effective_on <= period.start:
            due[change.account_id] = change
    return due


def apply_due(change: ScheduledUserChange, account) -> bool:
    """Apply one waiting change at its period start. The caller (the run) holds the account's
    row lock and read `change` after taking it. True if it was applied."""
    from app.billing.models import ServicePlan
    from app.billing.orders import record_order
    from app.calls import live
    from app.numbers.operations import detach_from_extension
    from provisioning import extensions

    if change.status != "scheduled":
        return False
    plan = db.session.execute(select(ServicePlan).where(ServicePlan.account_id == account.id)
                              .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if plan is None or change.to_users >= plan.users:
        # No plan any more, or the count is already at or under the target: nothing to remove.
        _close(change, "cancelled", "nothing to remove: the account already has "
                                    f"{plan.users if plan else 0} users", None)
        audit.record("plan.users_change_cancelled", change, account_id=account.id, before=change.from_users,
                     after=change.to_users, effective_on=change.effective_on.isoformat(), note=change.note)
        return False
    before, removed = plan.users, plan.users - change.to_users
    for ext in extensions.newest_extensions(account, removed):
        detach_from_extension(ext)     # its DIDs stay on the account, unattached
    gone = extensions.remove_extensions(account, removed)
    effective_at = local_midnight_utc(change.effective_on, account.timezone)
    order = record_order(account, "users", f"Users {before} → {change.to_users} from {change.effective_on.isoformat()} "
                                           "(scheduled)", status="processed", before=before, after=change.to_users,
                         charged="0", effective_at=effective_at.isoformat(), scheduled_change=change.id)
    plan.users = change.to_users
    change.status, change.order_id, change.closed_at = "applied", order.id, utcnow()
    audit.record("plan.users_changed", plan, account_id=account.id, before=before, after=change.to_users,
                 charged="0", scheduled_change=change.id, effective_on=change.effective_on.isoformat(),
                 extensions_removed=[e.number for e in gone])
    live.announce(account.account_number)
    db.session.flush()
    return True


def change_moment(order) -> datetime:
    """When a processed `users` order took effect, for `cycle.users_at`: a scheduled change
    counts as made just before the period it starts (so that period's charge uses its count);
    any other change when it was processed."""
    effective = (order.details or {}).get("effective_at")
    if effective:
        try:
            return datetime.fromisoformat(effective) - timedelta(microseconds=1)
        except ValueError:
            pass
    return order.processed_at or order.created_at
