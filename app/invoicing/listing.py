"""Invoice lists (the reseller's invoices page, all accounts or one) and the customer's bills:
filters by interval and status, totals per currency. Reads only; the caller's tenant scope
limits the rows (a reseller sees its subtree's, a customer its own account's).

The interval is on the issue date (UTC days). Status filters: draft, open (issued, not fully
paid), paid, void, overdue (open past its due date), credit notes apart ("credit_note").
Totals per currency, over the filtered rows: invoiced = the totals of issued invoices that
are not void (credit notes and voided invoices cancel each other and are left out), paid =
what was applied to them, outstanding = what is still due on open ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, func, or_, select

from app.accounts.models import Account
from app.extensions import db
from app.invoicing.models import Invoice, Receipt, Statement
from app.list_filters import day_bounds, read_interval, read_status

STATUS_FILTERS = ("open", "overdue", "paid", "void", "draft", "credit_note")
PAGE_SIZE = 100


@dataclass
class Filters:
    status: str = ""
    q: str = ""
    date_from: date | None = None
    date_to: date | None = None
    account_id: int | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args, account_id=None, statuses=STATUS_FILTERS) -> tuple["Filters", dict[str, str]]:
        """Filters from a query string; a bad value is dropped with a message for its field."""
        errors = {}
        f = cls(account_id=account_id)
        f.status = read_status(args, statuses, errors)
        f.q = (args.get("q") or "").strip()[:80]
        f.date_from, f.date_to = read_interval(args, errors)
        try:
            f.page = max(1, min(int(args.get("page") or 1), 10_000))
        except ValueError:
            f.page = 1
        return f, errors


def query(f: Filters, today: date | None = None):
    today = today or date.today()
    q = select(Invoice, Account).join(Account, Account.id == Invoice.account_id)
    if f.account_id is not None:
        q = q.where(Invoice.account_id == f.account_id)
    if f.status == "credit_note":
        q = q.where(Invoice.kind == "credit_note")
    elif f.status == "overdue":
        q = q.where(Invoice.kind == "invoice", Invoice.status == "open", Invoice.due_date < today)
    elif f.status:
        q = q.where(Invoice.kind == "invoice", Invoice.status == f.status)
    if f.q:
        like = f"%{f.q.lower()}%"
        q = q.where(or_(Account.account_number == f.q, Invoice.number == f.q, func.lower(Account.name).like(like),
                        func.lower(Account.company).like(like)))
    start, end = day_bounds(f.date_from, f.date_to)
    issued = func.coalesce(Invoice.issued_at, Invoice.created_at)
    if start:
        q = q.where(issued >= start)
    if end:
        q = q.where(issued < end)
    return q


def page(f: Filters, today: date | None = None):
    """(rows of (invoice, account), total count, totals per currency)."""
    q = query(f, today)
    sub = q.subquery()
    total = db.session.scalar(select(func.count()).select_from(sub))
    rows = db.session.execute(q.order_by(func.coalesce(Invoice.issued_at, Invoice.created_at).desc(), Invoice.id.desc())
                              .limit(PAGE_SIZE).offset((f.page - 1) * PAGE_SIZE)).all()
    return rows, total, totals(q)


@dataclass
class CurrencyTotals:
    currency: str
    count: int
    invoiced: Decimal
    paid: Decimal
    outstanding: Decimal


def totals(q) -> list[CurrencyTotals]:
    sub = q.with_only_columns(Invoice.currency, Invoice.kind, Invoice.status, Invoice.total, Invoice.amount_paid).subquery()
    counted = (sub.c.kind == "invoice") & sub.c.status.in_(("open", "paid"))
    rows = db.session.execute(
        select(sub.c.currency, func.count(),
               func.coalesce(func.sum(case((counted, sub.c.total), else_=0)), 0),
               func.coalesce(func.sum(case((counted, sub.c.amount_paid), else_=0)), 0),
               func.coalesce(func.sum(case(((sub.c.kind == "invoice") & (sub.c.status == "open"),
                                            sub.c.total - sub.c.amount_paid), else_=0)), 0))
        .group_by(sub.c.currency).order_by(sub.c.currency)).all()
    return [CurrencyTotals(c, n, Decimal(i), Decimal(p), Decimal(o)) for c, n, i, p, o in rows]


def display_status(invoice: Invoice, today: date | None = None) -> str:
    """open, overdue, paid, void, draft; "credit note" for credit notes."""
    if invoice.kind == "credit_note":
        return "credit_note"
    today = today or date.today()
    if invoice.status == "open" and invoice.due_date and invoice.due_date < today:
        return "overdue"
    return invoice.status


def amount_due(invoice: Invoice) -> Decimal:
    """What is still to pay on an issued invoice (0 for drafts, void ones and credit notes)."""
    if invoice.kind != "invoice" or invoice.status != "open":
        return Decimal(0)
    return max(Decimal(invoice.total) - Decimal(invoice.amount_paid), Decimal(0))


def unpaid_total(account_id: int) -> Decimal:
    """What the account still owes on its issued invoices (all of them, whatever the filter)."""
    return Decimal(db.session.scalar(
        select(func.coalesce(func.sum(Invoice.total - Invoice.amount_paid), 0))
        .where(Invoice.account_id == account_id, Invoice.kind == "invoice", Invoice.status == "open")) or 0)


# --- the customer's bills ------------------------------------------------------------------

BILL_STATUSES = ("unpaid", "paid", "void", "credit_note", "statement", "receipt")


@dataclass
class Bill:
    kind: str               # invoice | credit_note | statement | receipt
    id: int
    number: str
    date: datetime | date
    period: tuple[date, date] | None    # first and last day (inclusive)
    currency: str
    total: Decimal
    paid: Decimal
    due: Decimal
    due_date: date | None
    status: str             # unpaid | overdue | paid | void | credit_note | statement | receipt


def bills(account_id: int, f: Filters, today: date | None = None, limit: int = 500) -> list[Bill]:
    """An account's documents in the interval, newest first: invoices (unpaid, overdue, paid,
    void), credit notes, statements and receipts. `f.status` narrows to one of BILL_STATUSES."""
    today = today or date.today()
    start, end = day_bounds(f.date_from, f.date_to)
    out: list[Bill] = []
    want = f.status
    if want in ("", "unpaid", "paid", "void", "credit_note"):
        q = select(Invoice).where(Invoice.account_id == account_id, Invoice.status != "draft")
        issued = func.coalesce(Invoice.issued_at, Invoice.created_at)
        if start:
            q = q.where(issued >= start)
        if end:
            q = q.where(issued < end)
        if want == "unpaid":
            q = q.where(Invoice.kind == "invoice", Invoice.status == "open")
        elif want in ("paid", "void"):
            q = q.where(Invoice.kind == "invoice", Invoice.status == want)
        elif want == "credit_note":
            q = q.where(Invoice.kind == "credit_note")
        for inv in db.session.execute(q.order_by(issued.desc()).limit(limit)).scalars():
            status = display_status(inv, today)
            out.append(Bill(inv.kind, inv.id, inv.number or "", inv.issued_at or inv.created_at,
                            (inv.period_start, inv.period_end - timedelta(days=1)), inv.currency, Decimal(inv.total),
                            Decimal(inv.amount_paid), amount_due(inv), inv.due_date,
                            "unpaid" if status == "open" else status))
    if want in ("", "statement"):
        q = select(Statement).where(Statement.account_id == account_id)
        if start:
            q = q.where(Statement.created_at >= start)
        if end:
            q = q.where(Statement.created_at < end)
        for st in db.session.execute(q.order_by(Statement.created_at.desc()).limit(limit)).scalars():
            out.append(Bill("statement", st.id, st.period_key, st.created_at, (st.period_start, st.period_end - timedelta(days=1)),
                            st.currency, Decimal(st.closing_balance), Decimal(0), Decimal(0), None, "statement"))
    if want in ("", "receipt"):
        q = select(Receipt).where(Receipt.account_id == account_id)
        if start:
            q = q.where(Receipt.issued_at >= start)
        if end:
            q = q.where(Receipt.issued_at < end)
        for r in db.session.execute(q.order_by(Receipt.issued_at.desc()).limit(limit)).scalars():
            out.append(Bill("receipt", r.id, r.number, r.issued_at, None, r.currency, Decimal(r.amount),
                            Decimal(r.amount), Decimal(0), None, "receipt"))

    def when(b: Bill):
        d = b.date
        return d if isinstance(d, datetime) else datetime.combine(d, datetime.min.time())
    out.sort(key=lambda b: (when(b), b.id), reverse=True)
    return out[:limit]
