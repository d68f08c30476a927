"""Service plans and bundles ("countries & minutes")."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import AccountOwned
from tenants.models import utcnow


class ServicePlan(AccountOwned, db.Model):
    """One per account. Its name is unique within the reseller and never reused."""
    __tablename__ = "service_plans"
    __table_args__ = (UniqueConstraint("tenant_id", "name"), UniqueConstraint("account_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    users: Mapped[int] = mapped_column(default=1)
    cost_per_user: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE), default=Decimal("0"))
    rate_sheet_id: Mapped[int | None] = mapped_column(ForeignKey("rate_sheets.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlanCountry(AccountOwned, db.Model):
    """A country opened by the plan, with its free minutes per billing period (0 = none)."""
    __tablename__ = "plan_countries"
    __table_args__ = (UniqueConstraint("plan_id", "country"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("service_plans.id", ondelete="CASCADE"), index=True)
    country: Mapped[str] = mapped_column(String(2))
    minutes: Mapped[int] = mapped_column(default=0)


class BundleUsage(AccountOwned, db.Model):
    """Bundle seconds used per account, country and billing period (a new period starts at 0)."""
    __tablename__ = "bundle_usage"
    # Rewritten by every rated batch: room on each page keeps those updates HOT.
    __table_args__ = (UniqueConstraint("account_id", "country", "period_start"), {"postgresql_with": {"fillfactor": 80}})

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    period_start: Mapped[date] = mapped_column(Date)
    seconds_used: Mapped[int] = mapped_column(default=0)
