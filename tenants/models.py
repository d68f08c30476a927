"""The Tenant (reseller) and its place in the tree."""
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint, false, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db

ROOT_SLUG = "platform"


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Tenant(db.Model):
    """A reseller. The platform operator is the root; resellers may have sub-resellers.

    `path` is the materialised path ("/1/4/9/") so "this tenant and its descendants" is one
    indexed LIKE, however deep the tree.
    """
    __tablename__ = "tenants"
    # Names are unique among siblings (app.resellers checks it case-insensitively first).
    __table_args__ = (UniqueConstraint("parent_id", "name"),
                      CheckConstraint("call_charge_places BETWEEN 2 AND 4", name="call_charge_places"))

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    path: Mapped[str] = mapped_column(String(255), index=True, default="/")
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended
    email: Mapped[str] = mapped_column(String(254), default="")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    base_extension: Mapped[int] = mapped_column(default=1000)
    # The parent's rate sheet this reseller buys at (its cost price for margin reports).
    buy_rate_sheet_id: Mapped[int | None] = mapped_column(ForeignKey("rate_sheets.id", use_alter=True))
    # Call charge precision: decimals a call's cost is rounded to (app.money.call_charge_places,
    # docs/rating.md "Call charge precision"). 4 for a new reseller; 2 kept for resellers that
    # existed before the setting (migration i14_call_precision).
    call_charge_places: Mapped[int] = mapped_column(default=4, server_default="4")
    # A ledger adjustment (credit, debit, balance reset) of more than this, in the tenant's
    # currency, needs a second confirmation (app.accounts.operations.adjust_balance).
    adjustment_confirm_limit: Mapped[Decimal] = mapped_column(
        Numeric(18, 4), default=Decimal("1000"), server_default="1000")
    # A lower user count applies at once with a prorated credit (True), or at the start of the
    # account's next billing period (False, the default): app/billing/user_changes.py.
    user_decrease_immediate: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped["Tenant | None"] = relationship(remote_side=[id])

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    def is_ancestor_of(self, other: "Tenant") -> bool:
        return other.path.startswith(self.path) and other.id != self.id

    def subtree_ids_query(self):
        return select(Tenant.id).where(Tenant.path.like(self.path + "%"))


def place_in_tree(tenant: Tenant, parent: Tenant | None) -> None:
    """Set parent and path; the tenant must already have an id (flush first)."""
    tenant.parent_id = parent.id if parent else None
    tenant.path = f"{parent.path if parent else '/'}{tenant.id}/"
