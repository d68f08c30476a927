"""Extensions (SIP users, "network numbers") of an account."""
from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from tenants.mixins import AccountOwned
from tenants.models import utcnow


class Extension(AccountOwned, db.Model):
    __tablename__ = "extensions"
    # Extension numbers are unique within a reseller; SIP usernames across the platform.
    __table_args__ = (UniqueConstraint("tenant_id", "number"), UniqueConstraint("sip_username"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
    sip_username: Mapped[str] = mapped_column(String(64))
    sip_secret: Mapped[str] = mapped_column(String(64))
    caller_id: Mapped[str] = mapped_column(String(80), default="")
    active: Mapped[bool] = mapped_column(default=True)
    # Registration status, kept by the AMI watcher.
    registered: Mapped[bool] = mapped_column(default=False)
    contact_address: Mapped[str] = mapped_column(String(255), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
