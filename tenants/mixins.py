"""Column mixins the scoping hook recognises."""
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class TenantOwned:
    """A row that belongs to one tenant; filtered to the current scope on every query."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("tenants.id"), index=True, nullable=False)


class AccountOwned(TenantOwned):
    """A row that belongs to one customer account (and so to that account's tenant).

    A customer-portal scope also filters these by account, so one account administrator
    never sees a sibling account's rows even within the same reseller.
    """

    @declared_attr
    def account_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("accounts.id"), index=True, nullable=False)
