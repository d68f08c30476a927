"""Column mixins the scoping hook recognises."""
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class TenantOwned:
    """A row that belongs to one tenant; filtered to the current scope on every query."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("tenants.id"), index=True, nullable=False)


class AccountRecord(TenantOwned):
    """The customer account itself: a customer-portal scope sees only its own account row.

    The scoping hook filters by this mixin (by `id`), so tenants/ need not know the Account model."""

    id: Mapped[int] = mapped_column(primary_key=True)


class AccountOwned(TenantOwned):
    """A row that belongs to one customer account (and so to that account's tenant).

    A customer-portal scope also filters these by account, so one account administrator
    never sees a sibling account's rows even within the same reseller.
    """

    @declared_attr
    def account_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("accounts.id"), index=True, nullable=False)


class HighVolumeAccountOwned(AccountOwned):
    """An AccountOwned row written a million times a day: calls and ledger entries.

    No foreign keys and no single-column indexes on tenant_id/account_id. Each would cost every
    one of those million inserts (a foreign-key check is a locked lookup per row: a third of
    the rating job's database time), and neither protects anything here:
    - accounts are never deleted (closing one keeps the row), and every writer of these rows
      reads the account inside the tenant scope in the same transaction; the ledger writers
      lock it (`app.ledger.post`, `post_many`);
    - the tables' own composite indexes lead with account_id or tenant_id.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(nullable=False)

    @declared_attr
    def account_id(cls) -> Mapped[int]:
        return mapped_column(nullable=False)
