"""Activation and orders: what was ordered for an account, pending until processed."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
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
    return order


def process_order(order: Order) -> None:
    if order.status == "processed":
        raise FieldError(None, "This order is already processed.")
    order.status = "processed"
    order.processed_at = utcnow()
    audit.record("order.processed", order, description=order.description)
