"""Helpers for the billing-cycle tests: accounts with a plan, numbers and extras; ledger reads."""
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from tenants.scope import tenant_scope, unscoped
from tests.integration.onboarding_support import make_numbers, onboard_account

NEXT = "2027-01"                         # a period after every test account's creation
NEXT_NOW = "2027-01-01T12:00:00+00:00"


def billed_account(tenant, *, users=3, cost_per_user="5.00", numbers=0, monthly="2.50", credit="100.00", **terms):
    """An onboarded account (its first month charged, prorated, as in production); returns its id."""
    ids = make_numbers(tenant, numbers, setup="0", monthly=monthly) if numbers else []
    return onboard_account(tenant, users=users, cost_per_user=cost_per_user, initial_credit=credit,
                           number_ids=ids, **terms)


def set_fields(account_id, **values):
    from app.accounts.models import Account

    with unscoped():
        account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        for k, v in values.items():
            setattr(account, k, v)
        db.session.commit()


def add_extra(tenant, account_id, *, description="Support", amount="10.00", period="monthly",
              start=date(2026, 12, 1), end=None):
    from app.billing.extras import Extra

    with tenant_scope(tenant.id):
        x = Extra(tenant_id=tenant.id, account_id=account_id, description=description, amount=Decimal(amount),
                  period=period, start_date=start, end_date=end)
        db.session.add(x)
        db.session.commit()
        return x.id


def entries(account_id, kind=None):
    from app.ledger import LedgerEntry

    with unscoped():
        q = select(LedgerEntry.idempotency_key, LedgerEntry.amount).where(LedgerEntry.account_id == account_id)
        if kind:
            q = q.where(LedgerEntry.kind == kind)
        return dict(db.session.execute(q).all())


def account(account_id):
    from app.accounts.models import Account

    db.session.remove()
    with unscoped():
        return db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()


def charges(account_id, status=None):
    from app.billing.cycle import RecurringCharge

    with unscoped():
        q = select(RecurringCharge).where(RecurringCharge.account_id == account_id)
        if status:
            q = q.where(RecurringCharge.status == status)
        return list(db.session.execute(q.order_by(RecurringCharge.id)).scalars())


def ledger_rows() -> int:
    from app.ledger import LedgerEntry

    with unscoped():
        return db.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()


def notifications(account_id):
    from app.notifications.models import Notification

    with unscoped():
        return [n.kind for n in db.session.execute(select(Notification).where(Notification.account_id == account_id)
                                                  .order_by(Notification.id)).scalars()]
