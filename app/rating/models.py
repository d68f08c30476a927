"""Rate sheets and their rows (the tables behind the rating engine)."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKeyConstraint, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import RATE_SCALE
from tenants.mixins import TenantOwned
from tenants.models import utcnow

Rate6 = Numeric(14, RATE_SCALE)


class RateSheet(TenantOwned, db.Model):
    __tablename__ = "rate_sheets"
    # (id, tenant_id) is unique anyway; the constraint lets rates reference both at once.
    __table_args__ = (UniqueConstraint("tenant_id", "name"), UniqueConstraint("id", "tenant_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    description: Mapped[str] = mapped_column(String(255), default="")
    # Short-call charge: a fixed surcharge on answered calls shorter than the threshold.
    short_call_seconds: Mapped[int] = mapped_column(default=0)  # 0 = off
    short_call_charge: Mapped[Decimal] = mapped_column(Rate6, default=Decimal("0"))
    # Bumped on every change to the sheet or its rows: the prefix-index cache key.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Rate(TenantOwned, db.Model):
    __tablename__ = "rates"
    # The unique index (sheet, prefix, effective_from) also serves every lookup by (sheet, prefix)
    # and every query of a tenant's rates (they go through its sheets): no other index, one less
    # b-tree to fill on a 170,000-row deck import. One foreign key, (sheet, tenant) -> the sheet:
    # a row's tenant is always its sheet's (and so a real tenant), and an import checks one key
    # per row instead of two (each check is a locked lookup: 2/3 of the INSERT's time).
    __table_args__ = (
        UniqueConstraint("rate_sheet_id", "prefix", "effective_from"),
        ForeignKeyConstraint(["rate_sheet_id", "tenant_id"], ["rate_sheets.id", "rate_sheets.tenant_id"],
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(nullable=False)   # TenantOwned's column, its key in the pair above
    rate_sheet_id: Mapped[int] = mapped_column()
    prefix: Mapped[str] = mapped_column(String(20))       # dialled digits, E.164 without +
    country: Mapped[str] = mapped_column(String(2), default="")  # ISO 3166 alpha-2
    description: Mapped[str] = mapped_column(String(120), default="")
    rate_per_minute: Mapped[Decimal] = mapped_column(Rate6)
    connect_fee: Mapped[Decimal] = mapped_column(Rate6, default=Decimal("0"))
    first_block: Mapped[int] = mapped_column(default=0)   # seconds
    increment: Mapped[int] = mapped_column(default=1)     # seconds
    minimum_charge: Mapped[Decimal] = mapped_column(Rate6, default=Decimal("0"))
    effective_from: Mapped[date] = mapped_column(Date, default=date(2000, 1, 1))
