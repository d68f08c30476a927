"""Payment history: every attempt (succeeded, failed, refunded, disputed, pending, expired),
filtered for the reseller's list and the customer's page. Reads only; the tenant scope of
the caller limits the rows (a customer sees its account's, a reseller its subtree's)."""
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select

from app.accounts.models import Account
from app.extensions import db
from app.list_filters import day_bounds, read_interval, read_status
from app.payments.models import STATUSES, Payment

METHODS = ("card", "bank_transfer", "cash", "cheque")
# What a reseller filters by: "refunded" covers partial refunds too.
STATUS_FILTERS = {s: (s,) for s in STATUSES if s != "partially_refunded"}
STATUS_FILTERS["refunded"] = ("refunded", "partially_refunded")
PAGE_SIZE = 100


@dataclass
class Filters:
    status: str = ""
    method: str = ""
    q: str = ""
    date_from: date | None = None
    date_to: date | None = None
    account_id: int | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args, account_id=None) -> tuple["Filters", dict[str, str]]:
        """Filters from a query string; unknown values are dropped with a message per field."""
        errors = {}
        f = cls(account_id=account_id)
        f.status = read_status(args, STATUS_FILTERS, errors)
        method = (args.get("method") or "").strip()
        if method and method not in METHODS:
            errors["method"] = "Unknown method."
        else:
            f.method = method
        f.q = (args.get("q") or "").strip()[:80]
        f.date_from, f.date_to = read_interval(args, errors)
        try:
            f.page = max(1, int(args.get("page") or 1))
        except ValueError:
            f.page = 1
        return f, errors


def query(f: Filters):
    q = select(Payment, Account).join(Account, Account.id == Payment.account_id)
    if f.account_id is not None:
        q = q.where(Payment.account_id == f.account_id)
    if f.status:
        q = q.where(Payment.status.in_(STATUS_FILTERS[f.status]))
    if f.method:
        q = q.where(Payment.method == f.method)
    if f.q:
        like = f"%{f.q.lower()}%"
        q = q.where(or_(Account.account_number == f.q, func.lower(Account.name).like(like),
                        func.lower(Account.company).like(like), Payment.provider_ref == f.q,
                        Payment.payment_intent_id == f.q, func.lower(Payment.reference).like(like)))
    start, end = day_bounds(f.date_from, f.date_to)
    if start:
        q = q.where(Payment.created_at >= start)
    if end:
        q = q.where(Payment.created_at < end)
    return q


def page(f: Filters):
    """(rows of (payment, account), total count)."""
    q = query(f)
    total = db.session.scalar(select(func.count()).select_from(q.subquery()))
    rows = db.session.execute(q.order_by(Payment.created_at.desc(), Payment.id.desc())
                              .limit(PAGE_SIZE).offset((f.page - 1) * PAGE_SIZE)).all()
    return rows, total


def of_account(account_id: int, limit: int = 50) -> list[Payment]:
    return list(db.session.execute(select(Payment).where(Payment.account_id == account_id)
                                   .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit)).scalars())
