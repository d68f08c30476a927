"""What a dashboard says about the accounts in scope (a reseller's subtree, or every account
for the platform admin): money held and owed per currency (never added across currencies),
accounts under their low-balance level, suspended accounts."""
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from app.accounts.models import Account
from app.extensions import db

ZERO = Decimal(0)


@dataclass
class CurrencyMoney:
    currency: str
    accounts: int
    held: Decimal           # positive balances: the customers' money the reseller holds
    owed: Decimal           # what customers owe: negative balances and owed recurring charges


def money_by_currency() -> list[CurrencyMoney]:
    from app.billing.cycle import RecurringCharge

    rows = db.session.execute(
        select(Account.currency, func.count(Account.id),
               func.coalesce(func.sum(case((Account.balance > 0, Account.balance), else_=0)), 0),
               func.coalesce(func.sum(case((Account.balance < 0, -Account.balance), else_=0)), 0))
        .where(Account.status != "closed").group_by(Account.currency)
        .order_by(func.count(Account.id).desc(), Account.currency)).all()
    owed_charges = dict(db.session.execute(
        select(Account.currency, func.coalesce(func.sum(RecurringCharge.amount), 0))
        .join(Account, Account.id == RecurringCharge.account_id)
        .where(RecurringCharge.status == "owed").group_by(Account.currency)).all())
    return [CurrencyMoney(c, n, Decimal(held), Decimal(neg) + Decimal(owed_charges.get(c, 0)))
            for c, n, held, neg in rows]


def low_balance_accounts(limit: int = 10) -> tuple[list[Account], int]:
    """Active accounts whose available credit is under their low-balance level, lowest first."""
    where = (Account.status == "active", Account.low_balance_threshold > 0,
             Account.available_credit < Account.low_balance_threshold)
    count = db.session.scalar(select(func.count()).select_from(Account).where(*where))
    rows = db.session.execute(select(Account).where(*where).order_by(Account.available_credit, Account.id).limit(limit)).scalars().all()
    return rows, count


def suspended_accounts(limit: int = 10) -> tuple[list[Account], int]:
    where = (Account.status == "suspended",)
    count = db.session.scalar(select(func.count()).select_from(Account).where(*where))
    rows = db.session.execute(select(Account).where(*where).order_by(Account.updated_at.desc(), Account.id)
                              .limit(limit)).scalars().all()
    return rows, count
