"""The ledger: every balance change is one entry plus one atomic UPDATE of the balance.

`post()` is idempotent by a natural key unique per account (`account:kind:period`,
`call:<uniqueid>`, `stripe:<event id>`...): a retried job or webhook finds the key taken,
writes nothing and gets the first entry back. Invariant, for every account:
    account.balance == sum(ledger_entries.amount)
"""
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app import live, money
from app.accounts import Account
from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import AccountOwned
from tenants.models import utcnow

KINDS = (
    "credit",        # money in: initial credit, manual credit
    "payment",       # money in from a payment provider
    "refund",
    "adjustment",    # manual correction with a reason (either sign)
    "user_charge",   # users x cost per user
    "number_charge",  # DID setup / monthly
    "recurring",     # extras
    "call",          # rated call
    "refill",        # autorefill
    "invoice",
)


class LedgerEntry(AccountOwned, db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key"),
        Index("ix_ledger_entries_account_created", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE))  # + credit, - debit
    kind: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(160))
    description: Mapped[str] = mapped_column(String(255), default="")
    balance_after: Mapped[Decimal | None] = mapped_column(Numeric(18, MONEY_SCALE))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Posted:
    entry_id: int
    amount: Decimal
    balance_after: Decimal
    created: bool  # False: the key was already used; nothing changed


def post(account_id: int, amount, kind: str, idempotency_key: str, *,
         description: str = "", created_by_id: int | None = None) -> Posted:
    """Credit (+) or debit (-) an account once per key. Flushes, never commits.

    The entry is inserted first with ON CONFLICT DO NOTHING: a concurrent transaction
    holding the same key blocks us on the unique index until it commits, then we see the
    conflict and change nothing. Only the transaction that inserted updates the balance,
    with `balance = balance + :amount` so no read-modify-write can lose an update.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if not idempotency_key:
        raise ValueError("a ledger entry needs an idempotency key")
    session = db.session
    # Scoped read: an account outside the current tenant scope does not exist here.
    row = session.execute(
        select(Account.tenant_id, Account.currency, Account.account_number).where(Account.id == account_id)
    ).one_or_none()
    if row is None:
        raise LookupError(f"account {account_id} not found in this scope")
    tenant_id, currency, account_number = row
    amount = money.quantize(amount, currency)

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(LedgerEntry)
        .values(tenant_id=tenant_id, account_id=account_id, amount=amount, kind=kind,
                idempotency_key=idempotency_key[:160], description=description[:255],
                created_by_id=created_by_id, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["account_id", "idempotency_key"])
        .returning(LedgerEntry.id)
    )
    entry_id = session.execute(stmt, execution_options={"all_tenants": True}).scalar()
    if entry_id is None:
        first = session.execute(
            select(LedgerEntry.id, LedgerEntry.amount, LedgerEntry.balance_after).where(
                LedgerEntry.account_id == account_id,
                LedgerEntry.idempotency_key == idempotency_key[:160],
            )
        ).one()
        return Posted(first.id, first.amount, first.balance_after, created=False)

    balance = session.execute(
        update(Account).where(Account.id == account_id)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    session.execute(
        update(LedgerEntry).where(LedgerEntry.id == entry_id).values(balance_after=balance)
        .execution_options(synchronize_session=False)
    )
    _expire_loaded_balance(session, account_id)
    # After commit, tell the AMI watchers: running calls' deadlines follow the new balance.
    live.announce(account_number)
    return Posted(entry_id, amount, balance, created=True)


def _expire_loaded_balance(session, account_id):
    # A loaded Account would otherwise show the balance from before this UPDATE.
    obj = session.identity_map.get(session.identity_key(Account, account_id))
    if obj is not None:
        session.expire(obj, ["balance"])


def balance_mismatches(session=None) -> list[tuple[int, Decimal, Decimal]]:
    """Accounts (in scope) whose balance is not the sum of their ledger: should be none."""
    session = session or db.session
    sums = (
        select(LedgerEntry.account_id, func.coalesce(func.sum(LedgerEntry.amount), 0).label("total"))
        .group_by(LedgerEntry.account_id).subquery()
    )
    rows = session.execute(
        select(Account.id, Account.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == Account.id)
    ).all()
    return [(i, b, Decimal(t)) for i, b, t in rows if Decimal(b) != Decimal(t)]
