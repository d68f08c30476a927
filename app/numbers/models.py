"""A DID ("incoming number"): platform inventory -> reseller spare -> account -> extension.

tenant_id is its holder. The row carries both price lists: the platform's cost to the
reseller and the reseller's sell price to its accounts (in the reseller's currency).
"""
from datetime import datetime
from decimal import Decimal

import phonenumbers
from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import TenantOwned
from tenants.models import utcnow

Money = Numeric(18, MONEY_SCALE)
STATUSES = ("platform", "spare", "assigned")


class Number(TenantOwned, db.Model):
    """One DID. tenant_id is its holder: the root tenant while the platform keeps it."""
    __tablename__ = "numbers"
    __table_args__ = (Index("ix_numbers_tenant_status", "tenant_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)   # E.164, with +
    country: Mapped[str] = mapped_column(String(2))
    # The platform's price to the reseller.
    setup_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    monthly_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    # The reseller's price to its accounts (set to the cost on allocation; the reseller edits it).
    sell_setup: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    sell_monthly: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(10), default="platform")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    extension_id: Mapped[int | None] = mapped_column(ForeignKey("extensions.id", ondelete="SET NULL"), index=True)
    allocated_at: Mapped[datetime | None] = mapped_column()
    assigned_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def display(self) -> str:
        try:
            return phonenumbers.format_number(phonenumbers.parse(self.number), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        except phonenumbers.NumberParseException:
            return self.number
