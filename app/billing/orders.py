"""Activation and orders: what was ordered for an account, pending until processed."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app import audit
from app.conflicts import FieldError
from app.extensions import db
from tenants.mixins import AccountOwned
from tenants.models import utcnow

KINDS = ("activation", "number", "users", "service")


class Order(AccountOwned, db.Model):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)  # pending | processed
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()


def record_order(account, kind: str, description: str, *, status: str = "pending", **details) -> Order:
    from flask import has_request_context
    from flask_login import current_user

    if kind not in KINDS:
        raise ValueError(f"unknown order kind {kind!r}")
    by = current_user.id if has_request_context() and current_user and current_user.is_authenticated else None
    order = Order(tenant_id=account.tenant_id, account_id=account.id, kind=kind, description=description[:255],
                  status=status, details={k: str(v) if v is not None else None for k, v in details.items()},
                  created_by_id=by, processed_at=utcnow() if status == "processed" else None)
    db.session.add(order)
    db.session.flush()
    audit.record(f"order.{status}", order, kind=kind, description=description)
    if status == "pending" and has_request_context() and getattr(current_user, "account_id", None):
        _tell_reseller(order, account)     # a customer asked: the reseller hears of it at once
    return order


def _tell_reseller(order: Order, account) -> None:
    """Email the account's reseller that an order waits (nothing when it has no address)."""
    from app.notifications.outbox import queue_email, render_template
    from tenants.models import Tenant

    reseller = db.session.get(Tenant, account.tenant_id)
    if reseller is None or not reseller.email:
        return
    body = render_template("email/order_arrived.txt", order=order, account=account, reseller=reseller)
    queue_email(tenant_id=account.tenant_id, account_id=account.id, to=reseller.email, kind="order_arrived",
                subject=f"New order from {account.name} ({account.account_number}): {order.description}"[:200],
                body=body)


# What the reseller's orders page filters on: the order's status, and its kind.
ORDER_STATUSES = ("pending", "processed", "all")


def orders_list(*, status: str = "pending", kind: str = "", limit: int = 200):
    """Orders across the accounts in scope, newest first, with their accounts, and the count
    of all pending ones (the figure the navigation shows)."""
    from app.accounts.models import Account

    query = select(Order, Account).join(Account, Account.id == Order.account_id)
    if status in ("pending", "processed"):
        query = query.where(Order.status == status)
    if kind:
        query = query.where(Order.kind == kind)
    rows = db.session.execute(query.order_by(Order.id.desc()).limit(limit)).all()
    return rows


def pending_count() -> int:
    return db.session.execute(select(func.count()).select_from(Order).where(Order.status == "pending")).scalar_one()


def process_order(order: Order) -> None:
    if order.status == "processed":
        raise FieldError(None, "This order is already processed.")
    order.status = "processed"
    order.processed_at = utcnow()
    audit.record("order.processed", order, description=order.description)
