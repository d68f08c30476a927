"""The customer Account: the container billed for calls, users and numbers."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Computed, Index, Numeric, String, Text, UniqueConstraint, case, false
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import AccountRecord
from tenants.models import utcnow

Money = Numeric(18, MONEY_SCALE)

STATUSES = ("active", "disabled", "suspended", "expired", "closed")   # expired: app/accounts/expiry.py
BILLING_TYPES = ("prepaid", "postpaid")
EXPIRY_MODES = ("none", "date", "days_after_first_use", "days_after_creation")


class Account(AccountRecord, db.Model):
    __tablename__ = "accounts"
    # Every rated batch, payment and billing run rewrites the balance: room on each page keeps
    # those updates HOT (no new entry in any of the 16 list and search indexes below). A billing
    # run rewrites every row of a page in one transaction: half a page holds all their new
    # versions (80 held a third of them; migration i16_accounts_fillfactor).
    __table_args__ = (UniqueConstraint("account_number"), {"postgresql_with": {"fillfactor": 50}})

    # id: AccountRecord's primary key
    account_number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), index=True)
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    company: Mapped[str] = mapped_column(String(120), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    city: Mapped[str] = mapped_column(String(80), default="")
    state: Mapped[str] = mapped_column(String(80), default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(10), default="en")
    currency: Mapped[str] = mapped_column(String(3), default="USD")

    status: Mapped[str] = mapped_column(String(12), default="active")
    # Why the account is suspended when the billing cycle did it ("" otherwise): such a
    # suspension is lifted by itself once the cause is paid (app/billing/cycle.py).
    status_reason: Mapped[str] = mapped_column(String(80), default="")
    billing_type: Mapped[str] = mapped_column(String(10), default="prepaid")
    # Changed only by app.ledger.post (one atomic UPDATE); never a form field.
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    credit_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    max_channels: Mapped[int] = mapped_column(default=0)  # 0 = unlimited
    cps_limit: Mapped[int] = mapped_column(default=0)      # 0 = unlimited
    low_balance_threshold: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    email_alerts: Mapped[bool] = mapped_column(default=True)
    play_insufficient_credit: Mapped[bool] = mapped_column(default=True)
    invoice_day: Mapped[int] = mapped_column(default=1)
    # Billing schedule (app/billing/schedule.py): monthly on billing_day (1-28) or daily,
    # in the account's time zone.
    billing_schedule: Mapped[str] = mapped_column(String(10), default="monthly")
    billing_day: Mapped[int] = mapped_column(default=1)
    # Unused since issue 17: migration i17_invoicing turned each rate into a tax of the tenant's
    # list (app/invoicing/models.py Tax, AccountTax). Kept so old data stays readable.
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3), default=Decimal("0"))
    # Tax exemption (issue 17): an exempt account pays none of its taxes; the reason is printed.
    tax_exempt: Mapped[bool] = mapped_column(default=False, server_default=false())
    tax_exempt_reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    vat_number: Mapped[str] = mapped_column(String(40), default="")
    expiry_mode: Mapped[str] = mapped_column(String(24), default="none")
    expiry_date: Mapped[date | None] = mapped_column()
    expiry_days: Mapped[int | None] = mapped_column()
    first_used_at: Mapped[datetime | None] = mapped_column()
    autorefill: Mapped[bool] = mapped_column(default=False)
    initial_balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    pin: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Optimistic lock: a stale edit form fails instead of overwriting newer data.
    version: Mapped[int] = mapped_column(default=1)
    # Search keys for the account list's case-insensitive "starts with" search, kept by the
    # database itself (generated columns: nothing to maintain in code, and plain-column
    # indexes that every backend and Alembic autogenerate can reflect).
    name_key: Mapped[str] = mapped_column(String(120), Computed("lower(name)", persisted=True))
    company_key: Mapped[str] = mapped_column(String(120), Computed("lower(company)", persisted=True))
    email_key: Mapped[str] = mapped_column(String(254), Computed("lower(email)", persisted=True))

    __mapper_args__ = {"version_id_col": version}

    @hybrid_property
    def available_credit(self) -> Decimal:
        """What calls may still spend: prepaid balance, or postpaid credit-limit headroom."""
        if self.billing_type == "postpaid":
            return self.balance + self.credit_limit
        return self.balance

    @available_credit.inplace.expression
    @classmethod
    def _available_credit_sql(cls):
        """The same in SQL (dashboards, alerts)."""
        return case((cls.billing_type == "postpaid", cls.balance + cls.credit_limit), else_=cls.balance)

    @property
    def display_name(self) -> str:
        return self.name or self.company or self.account_number


# Indexes of the reseller's account list (app/accounts/listing.py; bench/accounts_list.py).
# Sorting: (column, id) so ORDER BY column, id LIMIT n reads the index in order; tenant_id is
# carried in the leaf (INCLUDE, PostgreSQL) so the tenant filter needs no heap visit. They
# also serve equality filters on status and terms. Balance is deliberately not indexed: it
# changes on every rated call, and indexing it would rule out HOT updates for all of those
# UPDATEs (each would then write to every index of the table).
_include_tenant = {"postgresql_include": ["tenant_id"]}
Index("ix_accounts_name_id", Account.name, Account.id, **_include_tenant)
Index("ix_accounts_company_id", Account.company, Account.id, **_include_tenant)
Index("ix_accounts_status_id", Account.status, Account.id, **_include_tenant)
Index("ix_accounts_billing_type_id", Account.billing_type, Account.id, **_include_tenant)
Index("ix_accounts_credit_limit_id", Account.credit_limit, Account.id, **_include_tenant)
# Search: "starts with" on each search key, one index per field so an OR of the four is a
# bitmap OR. Pattern ops let LIKE 'abc%' use the index under any collation (PostgreSQL).
for _column in (Account.name_key, Account.company_key, Account.email_key, Account.account_number):
    Index(f"ix_accounts_{_column.key}_prefix", _column,
          postgresql_ops={_column.key: "varchar_pattern_ops"})
# Search: "contains" (LIKE '%abc%') on name, company and email: trigram GIN indexes (pg_trgm,
# installed in the public schema by migration 0004). On SQLite they are plain indexes, unused.
for _column in (Account.name_key, Account.company_key, Account.email_key):
    Index(f"ix_accounts_{_column.key}_trgm", _column, postgresql_using="gin",
          postgresql_ops={_column.key: "public.gin_trgm_ops"})
