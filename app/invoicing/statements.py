"""Prepaid statements: one per account and closed month (the account's monthly period on its
billing day; calendar months for an account billed daily).

A statement is what the ledger says about the period, frozen when it is built:
opening balance (every entry before the period), credits (positive entries), charges
(negative entries: calls, users, numbers, extras, taxes of top-ups, refunds, debits) and the
closing balance = opening + credits + charges. Its lines: each ledger kind (credits and
charges apart), and the calls by country with their count, billed minutes and amount.
Amounts are the ledger's own (call charges may keep sub-cent places); nothing is rounded.
Built once: a second build of the same period finds it and changes nothing.
"""
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import Integer, case, cast, func, select

from app.billing.schedule import Period
from app.calls.models import Call
from app.extensions import db
from app.invoicing.invoices import _COUNTRY_NAMES, MINUTE_PLACES, customer_snapshot, insert_rows, utc_bounds
from app.invoicing.models import Statement, StatementLine
from app.ledger import LedgerEntry
from tenants.models import utcnow

ZERO = Decimal(0)
LINE_COPY = (("tenant_id", "int4"), ("statement_id", "int4"), ("position", "int4"), ("kind", "varchar"),
             ("description", "varchar"), ("country", "varchar"), ("calls", "int4"), ("quantity", "numeric"),
             ("amount", "numeric"))
KIND_LABELS = {
    "payment": "Payments", "credit": "Credits", "refill": "Autorefills", "adjustment": "Adjustments",
    "refund": "Refunds", "tax": "Taxes", "user_charge": "Users", "number_charge": "Numbers",
    "recurring": "Extras", "invoice": "Invoice corrections", "call": "Calls",
}


def statement_period(account, period_key_or_day) -> Period:
    """The statement period of an account that contains a day (monthly on its billing day; day 1
    for a daily account)."""
    from app.billing.schedule import period_containing

    day = 1 if account.billing_schedule != "monthly" else account.billing_day
    return period_containing(period_key_or_day, "monthly", day)


def existing(account_ids, period_key: str) -> dict[int, Statement]:
    return {s.account_id: s for s in db.session.execute(
        select(Statement).where(Statement.account_id.in_(list(account_ids)), Statement.period_key == period_key)).scalars()}


def build_statements(accounts, period: Period, *, skip_empty: bool = False) -> dict[int, Statement | None]:
    """Statements of `period` (closed) for these prepaid accounts: {account id: statement, or
    None when skipped (no entry in the period and a zero opening balance, with `skip_empty`)}."""
    accounts = list(accounts)
    out: dict[int, Statement | None] = {}
    if not accounts:
        return out
    have = existing([a.id for a in accounts], period.key)
    todo = [a for a in accounts if a.id not in have]
    out.update(have)
    by_zone: dict[str, list] = defaultdict(list)
    for a in todo:
        by_zone[a.timezone or "UTC"].append(a)
    now = utcnow()
    for tz, group in by_zone.items():
        ids = [a.id for a in group]
        start, end = utc_bounds(period, tz)
        opening = dict(db.session.execute(
            select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.account_id.in_(ids), LedgerEntry.created_at < start)
            .group_by(LedgerEntry.account_id)).all())
        positive = LedgerEntry.amount > 0
        kinds = db.session.execute(
            select(LedgerEntry.account_id, LedgerEntry.kind, case((positive, 1), else_=0).label("credit"),
                   func.count(), func.sum(LedgerEntry.amount))
            .where(LedgerEntry.account_id.in_(ids), LedgerEntry.kind != "call",
                   LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .group_by(LedgerEntry.account_id, LedgerEntry.kind, "credit")).all()
        call_id = cast(func.substr(LedgerEntry.idempotency_key, 6), Integer)
        calls = db.session.execute(
            select(LedgerEntry.account_id, Call.country, func.count(), func.coalesce(func.sum(Call.charged_seconds), 0),
                   func.sum(LedgerEntry.amount))
            .select_from(LedgerEntry).outerjoin(Call, Call.id == call_id)
            .where(LedgerEntry.account_id.in_(ids), LedgerEntry.kind == "call",
                   LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .group_by(LedgerEntry.account_id, Call.country).order_by(LedgerEntry.account_id, Call.country)).all()
        lines: dict[int, list[dict]] = defaultdict(list)
        credits: dict[int, Decimal] = defaultdict(lambda: ZERO)
        charges: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for account_id, kind, is_credit, count, amount in sorted(kinds, key=lambda r: (r[0], -r[2], r[1])):
            amount = Decimal(amount)
            (credits if amount > 0 else charges)[account_id] += amount
            lines[account_id].append({"kind": kind, "description": f"{KIND_LABELS.get(kind, kind)} ({count})",
                                      "country": None, "calls": None, "quantity": None, "amount": amount})
        for account_id, country, count, seconds, amount in calls:
            amount = Decimal(amount)
            (credits if amount > 0 else charges)[account_id] += amount
            label = f"Calls to {_COUNTRY_NAMES.get(country, country)}" if country else "Calls"
            lines[account_id].append({"kind": "calls", "description": label, "country": country or None,
                                      "calls": int(count), "quantity": (Decimal(int(seconds)) / 60).quantize(MINUTE_PLACES),
                                      "amount": amount})
        made = []
        for a in group:
            open_ = Decimal(opening.get(a.id) or 0)
            if skip_empty and not lines.get(a.id) and open_ == 0:
                out[a.id] = None
                continue
            s = Statement(tenant_id=a.tenant_id, account_id=a.id, period_key=period.key, period_start=period.start,
                          period_end=period.end, currency=a.currency, opening_balance=open_,
                          credits=credits[a.id], charges=charges[a.id],
                          closing_balance=open_ + credits[a.id] + charges[a.id], customer=customer_snapshot(a),
                          timezone=a.timezone or "UTC", created_at=now)
            db.session.add(s)
            made.append(s)
            out[a.id] = s
        if made:
            db.session.flush()
            rows = [{"tenant_id": s.tenant_id, "statement_id": s.id, "position": i, **line}
                    for s in made for i, line in enumerate(lines.get(s.account_id, []), start=1)]
            insert_rows(StatementLine.__table__, rows, LINE_COPY)
    return out


def lines_of(statement_id: int) -> list[StatementLine]:
    return list(db.session.execute(select(StatementLine).where(StatementLine.statement_id == statement_id)
                                   .order_by(StatementLine.position)).scalars())
