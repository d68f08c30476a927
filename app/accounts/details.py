"""Account details the manuals name beyond the account row (seeds 000/001): the agent and
commission rate, website, fax, a second phone, a separate address for low-credit notices, and
the reseller's own customer groups. Kept in their own table so the account row stays as is.
"""
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app import audit, money
from app.accounts.models import Account
from app.extensions import db
from app.ledger import LedgerEntry
from app.logins.models import User
from app.logins.permissions import RESELLER_ROLES
from tenants.mixins import AccountOwned, TenantOwned

REPORT_SCHEDULES = ("off", "daily", "weekly", "monthly")
ALERT_SCHEDULES = ("once", "hourly", "daily")
# Ledger kinds the customer pays for: what an agent earns commission on.
COMMISSIONABLE_KINDS = ("user_charge", "number_charge", "recurring", "call")


class CustomerGroup(TenantOwned, db.Model):
    __tablename__ = "customer_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


class AccountDetails(AccountOwned, db.Model):
    __tablename__ = "account_details"
    __table_args__ = (UniqueConstraint("account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    website: Mapped[str] = mapped_column(String(255), default="")
    fax: Mapped[str] = mapped_column(String(32), default="")
    phone2: Mapped[str] = mapped_column(String(32), default="")
    low_balance_email: Mapped[str] = mapped_column(String(254), default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    agent_commission_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3), default=Decimal("0"))  # percent
    group_id: Mapped[int | None] = mapped_column(ForeignKey("customer_groups.id", ondelete="SET NULL"), index=True)
    # Automatic usage reports (seed 002): off | daily | weekly | monthly, always to the reseller,
    # to the customer too when asked (app/notifications/usage_reports.py).
    report_schedule: Mapped[str] = mapped_column(String(8), default="off")
    report_to_customer: Mapped[bool] = mapped_column(default=False)
    # Automatic alerts (seed 002, app/notifications/alerts.py): low/zero balance and expiry soon
    # are sent when they start, then again hourly or daily while they last (once: never again),
    # for at most alert_stop_days (0: no limit); a sign-in notification when asked.
    alert_schedule: Mapped[str] = mapped_column(String(8), default="once")
    alert_stop_days: Mapped[int] = mapped_column(default=0)
    signin_notification: Mapped[bool] = mapped_column(default=False)


class DetailsError(ValueError):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def details_of(account_id: int) -> AccountDetails:
    """The details row of an account (a blank, unsaved one when there is none yet)."""
    row = db.session.execute(select(AccountDetails).where(AccountDetails.account_id == account_id)).scalar_one_or_none()
    if row is None:
        account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        row = AccountDetails(tenant_id=account.tenant_id, account_id=account_id, website="", fax="", phone2="",
                             low_balance_email="", agent_commission_rate=Decimal("0"), report_schedule="off",
                             report_to_customer=False, alert_schedule="once", alert_stop_days=0,
                             signin_notification=False)
    return row


def agents_of(tenant_id: int) -> list[User]:
    """The reseller's own logins: who can be an account's agent."""
    return db.session.execute(select(User).where(User.tenant_id == tenant_id, User.role.in_(RESELLER_ROLES))
                              .order_by(User.name, User.email)).scalars().all()


def groups_of(tenant_id: int) -> list[CustomerGroup]:
    return db.session.execute(select(CustomerGroup).where(CustomerGroup.tenant_id == tenant_id)
                              .order_by(CustomerGroup.name)).scalars().all()


def save_details(account_id: int, *, website="", fax="", phone2="", low_balance_email="", agent_id=None,
                 agent_commission_rate=Decimal("0"), group_id=None, report_schedule=None,
                 report_to_customer=None, alert_schedule=None, alert_stop_days=None,
                 signin_notification=None) -> AccountDetails:
    """Set an account's details; agent and group must be its own reseller's. Flushes only.
    The report settings change only when given."""
    row = details_of(account_id)
    if report_schedule is not None and report_schedule not in REPORT_SCHEDULES:
        raise DetailsError("report_schedule", "Choose off, daily, weekly or monthly.")
    if alert_schedule is not None and alert_schedule not in ALERT_SCHEDULES:
        raise DetailsError("alert_schedule", "Choose once, hourly or daily.")
    if alert_stop_days is not None and not 0 <= alert_stop_days <= 365:
        raise DetailsError("alert_stop_days", "Between 0 (no limit) and 365 days.")
    if agent_id and agent_id not in {u.id for u in agents_of(row.tenant_id)}:
        raise DetailsError("agent_id", "Choose a login of this account's reseller.")
    if group_id and group_id not in {g.id for g in groups_of(row.tenant_id)}:
        raise DetailsError("group_id", "Choose one of this reseller's groups.")
    rate = Decimal(agent_commission_rate or 0)
    if not Decimal("0") <= rate <= Decimal("100"):
        raise DetailsError("agent_commission_rate", "A commission rate is between 0 and 100 %.")
    before = {"agent_id": row.agent_id, "rate": str(row.agent_commission_rate), "group_id": row.group_id}
    row.website, row.fax, row.phone2 = website.strip(), fax.strip(), phone2.strip()
    row.low_balance_email = low_balance_email.strip().lower()
    row.agent_id, row.agent_commission_rate, row.group_id = agent_id or None, rate, group_id or None
    if report_schedule is not None:
        row.report_schedule = report_schedule
    if report_to_customer is not None:
        row.report_to_customer = bool(report_to_customer)
    if alert_schedule is not None:
        row.alert_schedule = alert_schedule
    if alert_stop_days is not None:
        row.alert_stop_days = alert_stop_days
    if signin_notification is not None:
        row.signin_notification = bool(signin_notification)
    db.session.add(row)
    db.session.flush()
    audit.record("account.details_saved", tenant_id=row.tenant_id, account_id=account_id, before=before,
                 agent_id=row.agent_id, rate=str(rate), group_id=row.group_id,
                 reports=f"{row.report_schedule}{' (customer too)' if row.report_to_customer else ''}")
    return row


def create_group(tenant_id: int, name: str) -> CustomerGroup:
    name = (name or "").strip()
    if not name:
        raise DetailsError("name", "Give the group a name.")
    if any(g.name.lower() == name.lower() for g in groups_of(tenant_id)):
        raise DetailsError("name", "This reseller already has a group with this name.")
    group = CustomerGroup(tenant_id=tenant_id, name=name[:80])
    db.session.add(group)
    db.session.flush()
    audit.record("customer_group.created", group, name=group.name)
    return group


def account_ids_in_group(group_id: int) -> list[int]:
    """For the list filter and bulk actions: the accounts of a group."""
    return list(db.session.execute(select(AccountDetails.account_id).where(AccountDetails.group_id == group_id)
                                   ).scalars())


def commission_report(agent_id: int, start: date, end: date) -> list[dict]:
    """Per account of the agent, per currency: what the customer was charged from `start` to
    `end` (both inclusive) and the agent's commission on it, rounded once."""
    since, until = datetime.combine(start, time.min), datetime.combine(end + timedelta(days=1), time.min)
    charged = func.coalesce(func.sum(-LedgerEntry.amount), 0)
    rows = db.session.execute(
        select(Account, AccountDetails.agent_commission_rate, charged)
        .join(AccountDetails, AccountDetails.account_id == Account.id)
        .outerjoin(LedgerEntry, (LedgerEntry.account_id == Account.id)
                   & LedgerEntry.kind.in_(COMMISSIONABLE_KINDS)
                   & (LedgerEntry.created_at >= since) & (LedgerEntry.created_at < until))
        .where(AccountDetails.agent_id == agent_id)
        .group_by(Account.id, AccountDetails.agent_commission_rate).order_by(Account.name)
    ).all()
    return [{"account": a, "rate": rate, "charged": money.quantize(Decimal(c), a.currency),
             "commission": money.quantize(Decimal(c) * rate / 100, a.currency)} for a, rate, c in rows]
