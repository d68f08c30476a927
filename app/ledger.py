"""The ledger: every balance change is one entry plus one atomic UPDATE of the balance.

`post()` is idempotent by a natural key unique per account (`account:kind:period`,
`call:<uniqueid>`, `stripe:<event id>`...): a retried job or webhook finds the key taken,
writes nothing and gets the first entry back. Invariant, for every account:
    account.balance == sum(ledger_entries.amount)
"""
import zlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import (DateTime, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, any_, bindparam,
                        func, select, text, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app import money
from app.calls import live
from app.accounts.models import Account
from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import HighVolumeAccountOwned
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
    "tax",           # taxes: of a postpaid invoice at finalise, of a prepaid top-up (app/invoicing)
)


class LedgerEntry(HighVolumeAccountOwned, db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key"),
        # An account's statement, newest first (ORDER BY id DESC).
        Index("ix_ledger_entries_account_entry", "account_id", "id"),
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


class AccountFacts(NamedTuple):
    """What post() reads of the account: a caller that has just read them (in its own scope,
    in the same transaction) passes them and saves post() the read."""
    tenant_id: int
    currency: str
    account_number: str


def post(account_id: int, amount, kind: str, idempotency_key: str, *,
         description: str = "", created_by_id: int | None = None, places: int | None = None,
         facts: AccountFacts | None = None) -> Posted:
    """Credit (+) or debit (-) an account once per key. Flushes, never commits.

    The amount is rounded to the account currency's minor unit, or to `places` decimals when
    given: a call charge at its reseller's call charge precision (money.call_charge_places),
    or MONEY_SCALE for an amount that is exact already (a reset to a typed balance).

    PostgreSQL, one statement (_POST): the account row is locked (FOR NO KEY UPDATE, as an
    UPDATE of it takes), the entry is inserted with ON CONFLICT DO NOTHING and its
    balance_after = the locked balance + amount, and only if it was inserted the balance moves
    with `balance = balance + :amount`, so no read-modify-write can lose an update. A
    concurrent transaction posting the same key holds the account lock until it commits; then
    we see the conflict and change nothing. (Account lock, then the entry: the order
    post_many() takes them too.) Elsewhere (the embedded SQLite, one writer at a time): the
    INSERT, then the UPDATE of the balance, then the entry's balance_after.
    The statements are built once: building them per call cost more than running them.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if not idempotency_key:
        raise ValueError("a ledger entry needs an idempotency key")
    session = db.session
    if facts is None:
        # Scoped read: an account outside the current tenant scope does not exist here.
        row = session.execute(_ACCOUNT_FACTS, {"account_id": account_id}).one_or_none()
        if row is None:
            raise LookupError(f"account {account_id} not found in this scope")
        facts = AccountFacts(*row)
    tenant_id, currency, account_number = facts
    amount = money.quantize(amount, currency, _places(places))
    key = idempotency_key[:160]
    values = {"tenant_id": tenant_id, "account_id": account_id, "amount": amount, "kind": kind,
              "idempotency_key": key, "description": description[:255], "created_by_id": created_by_id,
              "created_at": utcnow()}
    # Core statements on the tables: straight on the session's connection (the session's own
    # execute adds only its cost to them).
    conn = session.connection()
    if session.get_bind().dialect.name == "postgresql":
        row = conn.execute(_POST, values).one_or_none()
        if row is not None:
            entry_id, balance, after, reason, owed = row
            if balance != after:          # the lock makes them equal; never write a wrong after
                raise RuntimeError(f"ledger entry {entry_id}: balance {balance} != balance_after {after}")
    else:
        entry_id = conn.execute(_INSERT_SQLITE, values).scalar()
        if entry_id is not None:
            balance, reason = session.execute(
                update(Account).where(Account.id == account_id)
                .values(balance=Account.balance + amount)
                .returning(Account.balance, Account.status_reason)
                .execution_options(synchronize_session=False)
            ).one()
            session.execute(
                update(LedgerEntry).where(LedgerEntry.id == entry_id).values(balance_after=balance)
                .execution_options(synchronize_session=False)
            )
            owed = None
        row = entry_id
    if row is None:
        first = session.execute(_FIRST_ENTRY, {"account_id": account_id, "key": key}).one()
        return Posted(first.id, first.amount, first.balance_after, created=False)

    _expire_loaded_balance(session, account_id)
    # After commit, tell the AMI watchers: running calls' deadlines follow the new balance.
    live.announce(account_number)
    if amount > 0:
        credit_arrived(session, tenant_id, account_id, entry_id, owed=owed, status_reason=reason)
    return Posted(entry_id, amount, balance, created=True)


_ACCOUNT_FACTS = select(Account.tenant_id, Account.currency, Account.account_number) \
    .where(Account.id == bindparam("account_id"))
_FIRST_ENTRY = select(LedgerEntry.id, LedgerEntry.amount, LedgerEntry.balance_after).where(
    LedgerEntry.account_id == bindparam("account_id"), LedgerEntry.idempotency_key == bindparam("key"))


_INSERT_SQLITE = sqlite.insert(LedgerEntry.__table__).on_conflict_do_nothing(
    index_elements=["account_id", "idempotency_key"]).returning(LedgerEntry.__table__.c.id)

# post() on PostgreSQL: lock the account, insert the entry with its balance_after unless the
# key is taken, move the balance only if it was inserted, and read what credit_arrived() asks.
# No row back: the key was taken, nothing changed.
_POST = text(
    "WITH account AS (SELECT id, balance FROM accounts WHERE id = :account_id FOR NO KEY UPDATE),"
    " entry AS (INSERT INTO ledger_entries (tenant_id, account_id, amount, kind, idempotency_key, description,"
    " created_by_id, created_at, balance_after)"
    " SELECT :tenant_id, account.id, :amount, :kind, :idempotency_key, :description, :created_by_id, :created_at,"
    " account.balance + :amount FROM account"
    " ON CONFLICT (account_id, idempotency_key) DO NOTHING RETURNING id, balance_after),"
    " moved AS (UPDATE accounts SET balance = accounts.balance + :amount FROM entry WHERE accounts.id = :account_id"
    " RETURNING accounts.balance, accounts.status_reason)"
    " SELECT entry.id, moved.balance, entry.balance_after, moved.status_reason,"
    " EXISTS (SELECT 1 FROM recurring_charges WHERE account_id = :account_id AND status = 'owed')"
    " FROM entry, moved"
).bindparams(bindparam("created_by_id", type_=Integer), bindparam("created_at", type_=DateTime))


def _places(places: int | None) -> int | None:
    if places is not None and not (isinstance(places, int) and 0 <= places <= MONEY_SCALE):
        raise ValueError(f"a ledger amount keeps at most {MONEY_SCALE} decimal places")
    return places


def credit_arrived(session, tenant_id: int, account_id: int, entry_id, *,
                   owed: bool | None = None, status_reason: str | None = None) -> None:
    """Every credit (top-up, manual credit, payment, refill) passes here: if the account has
    owed recurring charges, or the billing cycle suspended it, queue `apply_owed` for after
    the commit (app/billing/cycle.py), keyed on this credit. Raw SQL: the ledger does not
    import the billing package that imports it. `owed` and `status_reason`, when the caller
    read them already (post() on PostgreSQL), save the two reads."""
    if owed is None or (not owed and status_reason is None):
        credits_arrived(session, [(tenant_id, account_id, entry_id)])      # reads what it needs
    elif owed or status_reason:
        _queue_apply_owed(tenant_id, account_id, entry_id)


def credits_arrived(session, credits: list[tuple[int, int, object]]) -> None:
    """`credit_arrived` for many (tenant id, account id, entry id) at once: two queries in all.
    An account waits for credit when it has owed recurring charges or a status reason."""
    if not credits:
        return
    ids = sorted({a for _, a, _ in credits})
    waiting = set(session.execute(text(
        "SELECT DISTINCT account_id FROM recurring_charges WHERE account_id IN :a AND status = 'owed'")
        .bindparams(bindparam("a", expanding=True)), {"a": ids}).scalars())
    rest = [a for a in ids if a not in waiting]
    if rest:
        waiting |= set(session.execute(select(Account.id).where(Account.id.in_(rest), Account.status_reason != "")
                                       ).scalars())
    for tenant_id, account_id, entry_id in credits:
        if account_id in waiting:
            _queue_apply_owed(tenant_id, account_id, entry_id)


def _queue_apply_owed(tenant_id: int, account_id: int, entry_id) -> None:
    from app.jobs import enqueue

    enqueue("workers.billing.apply_owed", tenant_id, account_id, job_id=f"apply-owed-{account_id}-{entry_id}")


def _expire_loaded_balance(session, account_id):
    # A loaded Account would otherwise show the balance from before this UPDATE.
    obj = session.identity_map.get(session.identity_key(Account, account_id))
    if obj is not None:
        session.expire(obj, ["balance"])


def _expire_loaded_balances(session, account_ids: set[int]) -> None:
    """`_expire_loaded_balance` for many: one pass over what the session holds (little, in the
    bulk paths), not a lookup per account."""
    for key in list(session.identity_map.keys()):       # (class, primary key, token): no loads
        if key[0] is Account and key[1][0] in account_ids:
            obj = session.identity_map.get(key)
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


class Entry(NamedTuple):
    """One entry for `post_many`: the same meaning as `post()`'s arguments (a tuple: a rating
    batch makes a million of them)."""
    account_id: int
    amount: Decimal
    kind: str
    idempotency_key: str
    description: str = ""
    places: int | None = None     # as post(): None rounds to the currency's minor unit


class _LockedAccount(NamedTuple):
    id: int
    tenant_id: int
    currency: str
    account_number: str
    balance: Decimal


def post_many(entries, *, new_keys: bool = False) -> set[tuple[int, str]]:
    """Post many entries at once, with `post()`'s guarantees. Flushes, never commits.

    Returns the (account id, key) pairs that were new; a key already used changes nothing.
    PostgreSQL: the accounts are locked (FOR NO KEY UPDATE, in id order), every entry is written by
    one INSERT … ON CONFLICT DO NOTHING RETURNING with its balance_after already computed,
    then each account's balance moves once, by the sum of the entries actually inserted,
    with `balance = balance + :sum`. So balance == sum(ledger) holds and keys stay unique.

    `new_keys=True` is for callers whose keys cannot have been used (`call:<id>` of calls
    rated in this transaction): the entries go in by one binary COPY, in a savepoint. The
    unique constraint still stands behind it: if a key was taken after all, the savepoint is
    rolled back and the batch goes the INSERT … ON CONFLICT way, so nothing is charged twice.
    Other databases (the embedded SQLite): one `post()` per entry.
    """
    session = db.session
    batch: dict[tuple[int, str], Entry] = {}
    kinds = set()
    for e in entries:
        kinds.add(e.kind)
        if not e.idempotency_key:
            raise ValueError("a ledger entry needs an idempotency key")
        key = (e.account_id, e.idempotency_key[:160])
        if key not in batch:                                          # first one wins
            batch[key] = e
    for kind in kinds - set(KINDS):
        raise ValueError(f"unknown ledger kind {kind!r}")
    if not batch:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        return {(e.account_id, e.idempotency_key[:160]) for e in batch.values()
                if post(e.account_id, e.amount, e.kind, e.idempotency_key, description=e.description,
                        places=e.places).created}

    session.flush()
    account_ids = sorted({a for a, _ in batch})
    # Scoped read: an account outside the current tenant scope does not exist here.
    # Unpacked rows: a Row's attribute access goes through a failed type lookup first.
    accounts = {row[0]: tuple.__new__(_LockedAccount, row) for row in session.execute(
        select(Account.id, Account.tenant_id, Account.currency, Account.account_number, Account.balance)
        # One array parameter, not one per account (thousands in a rating or billing batch).
        .where(Account.id == any_(bindparam(None, account_ids, type_=postgresql.ARRAY(Integer))))
        .order_by(Account.id)
        # FOR NO KEY UPDATE, as post()'s UPDATE takes: a concurrent INSERT that references the
        # account (a call, a ledger entry) holds KEY SHARE, which FOR UPDATE would wait on.
        .with_for_update(key_share=True)
    )}
    missing = set(account_ids) - set(accounts)
    if missing:
        raise LookupError(f"accounts {sorted(missing)} not found in this scope")

    # Running balances in MONEY_SCALE units: integer sums, and the COPY encodes them directly.
    start = {a: int(accounts[a].balance.scaleb(MONEY_SCALE)) for a in account_ids}
    running = dict(start)
    tenant_of = {a: accounts[a].tenant_id for a in account_ids}
    # Per currency and places: amount -> (amount rounded by money.quantize's rule, in
    # MONEY_SCALE units). A rating batch posts a few thousand distinct call costs.
    rounded_in: dict[tuple[str, int | None], _Rounded] = {}
    rows = []                            # tenant, account, amount, kind, key, description, units after
    for (account_id, key), e in batch.items():
        way = (accounts[account_id].currency, e.places)
        rounded = rounded_in.get(way)
        if rounded is None:
            rounded = rounded_in[way] = _Rounded(way[0], _places(e.places))
        amount, scaled = rounded.get(e.amount) or rounded.add(e.amount)
        after = running[account_id] = running[account_id] + scaled
        rows.append((tenant_of[account_id], account_id, amount, e.kind, key, e.description[:255], after))
    if new_keys and _copy_new_entries(session, rows, utcnow()):
        created = set(batch)
        # every entry went in: each account moves by its running total
        sums = {a: Decimal(running[a] - start[a]).scaleb(-MONEY_SCALE) for a in account_ids}
    else:
        inserted = _insert_entries(session, [r[:6] + (Decimal(r[6]).scaleb(-MONEY_SCALE),) for r in rows], utcnow())
        created = {(r.account_id, r.idempotency_key) for r in inserted}
        sums = {}
        for _, account_id, amount, _, key, _, _ in rows:
            if (account_id, key) in created:
                sums[account_id] = sums.get(account_id, Decimal(0)) + amount
        if created and len(created) < len(rows):
            # Some keys were taken already: the balance_after of the entries written after
            # them in the same account assumed they would be inserted. Recompute those (rare).
            ids = {(r.account_id, r.idempotency_key): r.id for r in inserted}
            partial = {a for _, a, _, _, k, _, _ in rows if (a, k) not in created}
            fixed = {a: accounts[a].balance for a in partial}
            for _, account_id, amount, _, key, _, _ in rows:
                if account_id in partial and (account_id, key) in created:
                    fixed[account_id] += amount
                    session.execute(update(LedgerEntry).where(LedgerEntry.id == ids[(account_id, key)])
                                    .values(balance_after=fixed[account_id])
                                    .execution_options(synchronize_session=False))
    if not created:
        return created

    moved = sorted(sums)
    session.execute(text(
        "UPDATE accounts SET balance = accounts.balance + v.s FROM unnest(CAST(:a AS integer[]),"
        " CAST(:s AS numeric[])) AS v(a, s) WHERE accounts.id = v.a"),
        {"a": moved, "s": [sums[a] for a in moved]})
    _expire_loaded_balances(session, set(moved))
    for account_id in moved:
        live.announce(accounts[account_id].account_number)
    credited = {a: key for _, a, amount, _, key, _, _ in rows if amount > 0 and (a, key) in created}
    credits_arrived(session, [(accounts[a].tenant_id, a, f"k{zlib.crc32(key.encode())}")   # rare: calls are debits
                              for a, key in sorted(credited.items())])
    return created


class _Rounded(dict):
    """amount -> (money.quantize(amount), the same in MONEY_SCALE units), for one currency and
    number of places."""

    def __init__(self, currency: str, places: int | None):
        super().__init__()
        self.currency = currency
        self.places = places

    def add(self, amount) -> tuple[Decimal, int]:
        value = money.quantize(amount, self.currency, self.places)
        self[amount] = result = (value, int(value.scaleb(MONEY_SCALE)))
        return result


def _copy_new_entries(session, rows, now) -> bool:
    """COPY the rows in a savepoint; False (nothing written) if a key was taken after all."""
    from psycopg.errors import UniqueViolation

    from app.bulk import NUMERIC_BINARY, copy_rows, numeric_binary, scaled_numeric_binary

    columns = (("tenant_id", "int4"), ("account_id", "int4"), ("amount", NUMERIC_BINARY), ("kind", "varchar"),
               ("idempotency_key", "varchar"), ("description", "varchar"), ("balance_after", NUMERIC_BINARY),
               ("created_at", "timestamp"))
    try:
        with session.begin_nested():
            copy_rows(session, "ledger_entries", columns,
                      [(t, a, numeric_binary(m), k, i, d, scaled_numeric_binary(b), now) for t, a, m, k, i, d, b in rows])
    except UniqueViolation:
        return False
    return True


def _insert_entries(session, rows, now) -> list:
    cols = list(zip(*rows))
    return session.execute(text(
        "INSERT INTO ledger_entries (tenant_id, account_id, amount, kind, idempotency_key, description,"
        " balance_after, created_at)"
        " SELECT t, a, m, k, i, d, b, :now FROM unnest(CAST(:t AS integer[]), CAST(:a AS integer[]),"
        " CAST(:m AS numeric[]), CAST(:k AS varchar[]), CAST(:i AS varchar[]), CAST(:d AS varchar[]),"
        " CAST(:b AS numeric[])) AS v(t, a, m, k, i, d, b)"
        " ON CONFLICT (account_id, idempotency_key) DO NOTHING RETURNING id, account_id, idempotency_key"),
        {"t": list(cols[0]), "a": list(cols[1]), "m": list(cols[2]), "k": list(cols[3]), "i": list(cols[4]),
         "d": list(cols[5]), "b": list(cols[6]), "now": now}).all()
