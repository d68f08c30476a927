"""An account's transactions (its ledger entries) over a date range in the account's time
zone, for the customer portal's page and CSV: opening balance, credits, debits, closing
balance. balance = sum(ledger) always holds, so the opening balance is the sum before the range."""
import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from app.extensions import db
from app.ledger import LedgerEntry
from app.rating.reports import DateRange, csv_cell
from app.timezones import to_local

PAGE_SIZE = 100
ZERO = Decimal(0)


@dataclass
class Transactions:
    range: DateRange
    rows: list
    count: int
    opening: Decimal
    credits: Decimal
    debits: Decimal          # negative: what left the balance
    page: int
    pages: int

    @property
    def closing(self) -> Decimal:
        return self.opening + self.credits + self.debits


def _in_range(account_id: int, rng: DateRange):
    start, end = rng.bounds
    return (LedgerEntry.account_id == account_id, LedgerEntry.created_at >= start, LedgerEntry.created_at < end)


def transactions(account_id: int, rng: DateRange, page: int = 1) -> Transactions:
    start, _ = rng.bounds
    opening = db.session.execute(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == account_id, LedgerEntry.created_at < start)).scalar_one()
    where = _in_range(account_id, rng)
    count, credits, debits = db.session.execute(select(
        func.count(),
        func.coalesce(func.sum(case((LedgerEntry.amount > 0, LedgerEntry.amount), else_=0)), 0),
        func.coalesce(func.sum(case((LedgerEntry.amount < 0, LedgerEntry.amount), else_=0)), 0)).where(*where)).one()
    pages = max(1, -(-count // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = db.session.execute(select(LedgerEntry).where(*where).order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).scalars().all()
    return Transactions(rng, rows, count, Decimal(opening), Decimal(credits), Decimal(debits), page, pages)


def transactions_csv(account_id: int, currency: str, rng: DateRange):
    """Every entry of the range, oldest first, as CSV text pieces (amounts as stored)."""
    out = io.StringIO()
    csv.writer(out).writerow((f"Date ({rng.tz})", "Description", "Kind", "Amount", "Balance after", "Currency"))
    yield out.getvalue()
    result = db.session.execute(
        select(LedgerEntry.created_at, LedgerEntry.description, LedgerEntry.kind, LedgerEntry.amount,
               LedgerEntry.balance_after).where(*_in_range(account_id, rng)).order_by(LedgerEntry.created_at, LedgerEntry.id)
        .execution_options(yield_per=2000))
    for part in result.partitions(2000):
        out = io.StringIO()
        w = csv.writer(out)
        for created, description, kind, amount, after in part:
            w.writerow((to_local(created, rng.tz).isoformat(sep=" ", timespec="seconds"),
                        csv_cell(description), kind,
                        format(Decimal(amount), "f"), "" if after is None else format(Decimal(after), "f"), currency))
        yield out.getvalue()
