"""The outbox: one row per email, written in the same transaction as what caused it."""
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from tenants.mixins import TenantOwned
from tenants.models import utcnow

STATUSES = ("queued", "sent", "logged", "failed")


class Notification(TenantOwned, db.Model):
    __tablename__ = "notifications"
    # A letter that must go once per thing it reports (a period's usage report) carries a key.
    __table_args__ = (UniqueConstraint("tenant_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))           # welcome, low_balance, password_changed
    to_email: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # queued -> sent (SMTP) | logged (no SMTP configured: written to the log) | failed
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    transport: Mapped[str] = mapped_column(String(10), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    # One attachment, or none: a text one (a CSV report) in `attachment`, or a binary one (an
    # invoice's PDF) in `attachment_data` with its media type (migration i17_invoice_docs).
    attachment_name: Mapped[str] = mapped_column(String(120), default="")
    attachment: Mapped[str | None] = mapped_column(Text)
    attachment_data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    attachment_type: Mapped[str] = mapped_column(String(80), default="")
