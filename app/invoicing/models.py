"""Invoicing tables (issue 17; the design contract is docs/invoicing.md).

Shared with the documents side (render.py, pages, emails): column names here are a contract.
A renamed column is committed at once and noted in this docstring.

- `taxes`, `account_taxes`: a tenant's taxes list and each account's choice
  (`accounts.tax_exempt`, `accounts.tax_exempt_reason` live on Account).
- `invoice_settings`: one row per tenant (none: the defaults of `InvoiceSettings.DEFAULTS`).
- `invoice_sequences`: gapless numbers per tenant and series (app/invoicing/numbering.py).
- `invoices` (+ `invoice_lines`, `invoice_taxes`, `invoice_payments`): postpaid invoices and
  their credit notes (kind "credit_note", period_key "void:<invoice id>").
- `statements` (+ `statement_lines`): prepaid monthly statements.
- `receipts`: one per credit of a prepaid account (payment or manual credit).
- `invoice_runs`, `invoice_run_accounts`: the monthly document run per tenant and closed
  period, and what it did for each account (so a skipped zero invoice is not retried).
"""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, LargeBinary, Numeric, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import MONEY_SCALE
from app.period_runs import PeriodRun
from tenants.mixins import AccountOwned, TenantOwned
from tenants.models import utcnow

Money = Numeric(18, MONEY_SCALE)
Rate = Numeric(7, 4)              # a tax rate in percent: 0.0000 .. 100.0000

INVOICE_KINDS = ("invoice", "credit_note")
INVOICE_STATUSES = ("draft", "open", "paid", "void")
LINE_KINDS = ("user_charge", "number_charge", "recurring", "calls", "adjustment", "other")
RUN_OUTCOMES = ("invoiced", "statement", "skipped", "failed")


class Tax(TenantOwned, db.Model):
    """A tax of the tenant's list. Applied in `position` order; a compound tax is computed on
    the subtotal plus the taxes before it. A tax used by a document is deactivated, never
    deleted (documents keep their own copy of name and rate in invoice_taxes anyway)."""
    __tablename__ = "taxes"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    rate: Mapped[Decimal] = mapped_column(Rate)
    position: Mapped[int] = mapped_column(default=1)
    compound: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountTax(AccountOwned, db.Model):
    """A tax the account pays (ignored while the account is tax exempt)."""
    __tablename__ = "account_taxes"
    __table_args__ = (UniqueConstraint("account_id", "tax_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tax_id: Mapped[int] = mapped_column(ForeignKey("taxes.id"), index=True)


class InvoiceSettings(TenantOwned, db.Model):
    """A reseller's invoice options (seed 002 "auto invoice"). No row: DEFAULTS."""
    __tablename__ = "invoice_settings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    DEFAULTS = {"number_prefix": "INV-{year}-", "receipt_prefix": "RCT-{year}-", "number_digits": 6,
                "payment_terms_days": 14, "legal_name": "", "address": "", "tax_number": "", "email": "",
                "decimals_shown": None, "include_rate_table": False, "include_payment_summary": True,
                "skip_zero": True, "footer": "", "issue_hour": 0, "invoice_format": "pdf"}

    id: Mapped[int] = mapped_column(primary_key=True)
    # `{year}` expands to the issue year; the expanded prefix is the numbering series.
    number_prefix: Mapped[str] = mapped_column(String(40), default="INV-{year}-")
    receipt_prefix: Mapped[str] = mapped_column(String(40), default="RCT-{year}-")
    number_digits: Mapped[int] = mapped_column(default=6)
    payment_terms_days: Mapped[int] = mapped_column(default=14)     # due date = issue date + N days
    legal_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    tax_number: Mapped[str] = mapped_column(String(60), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    decimals_shown: Mapped[int | None] = mapped_column()            # None: the currency's minor unit
    include_rate_table: Mapped[bool] = mapped_column(default=False)
    include_payment_summary: Mapped[bool] = mapped_column(default=True)
    skip_zero: Mapped[bool] = mapped_column(default=True)           # no invoice for a period with total 0
    footer: Mapped[str] = mapped_column(Text, default="")
    # The local hour (account time zone) on the billing day from which the run issues documents.
    issue_hour: Mapped[int] = mapped_column(default=0)
    invoice_format: Mapped[str] = mapped_column(String(4), default="pdf")   # pdf | html (email attachment)
    # The logo printed on every document (migration i17_invoice_docs): PNG, JPEG or SVG bytes,
    # checked on upload (app/invoicing/options.py); logo_type is its media type, "" for none.
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_type: Mapped[str] = mapped_column(String(40), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InvoiceSequence(TenantOwned, db.Model):
    """The last number used in a tenant's series. Allocated by UPDATE … RETURNING in the
    transaction that finalises the document (app/invoicing/numbering.py): gapless."""
    __tablename__ = "invoice_sequences"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "series"),)

    series: Mapped[str] = mapped_column(String(60))
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(AccountOwned, db.Model):
    """An invoice or a credit note. Once issued (status open) it is never edited except
    status, amount_paid, paid_at, voided_at and void_reason; never deleted. A credit note
    carries negative amounts and `credit_note_for_id`."""
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "period_key"),
        UniqueConstraint("tenant_id", "number"),
        Index("ix_invoices_tenant_period", "tenant_id", "period_start"),
        Index("ix_invoices_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), default="invoice")
    period_key: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)                  # exclusive
    status: Mapped[str] = mapped_column(String(8), default="draft")
    number: Mapped[str | None] = mapped_column(String(80))
    series: Mapped[str | None] = mapped_column(String(60))
    sequence: Mapped[int | None] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    tax_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    amount_paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    issued_at: Mapped[datetime | None] = mapped_column()
    due_date: Mapped[date | None] = mapped_column(Date)
    paid_at: Mapped[datetime | None] = mapped_column()
    voided_at: Mapped[datetime | None] = mapped_column()
    void_reason: Mapped[str] = mapped_column(String(255), default="")
    credit_note_for_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    # Snapshots taken when the invoice is built / finalised: what the document says forever.
    customer: Mapped[dict] = mapped_column(JSON, default=dict)     # name, company, address lines, email, tax_number, account_number
    seller: Mapped[dict] = mapped_column(JSON, default=dict)       # legal_name, address, tax_number, email
    tax_exempt_reason: Mapped[str] = mapped_column(String(255), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def amount_due(self) -> Decimal:
        return max(Decimal(self.total) - Decimal(self.amount_paid), Decimal(0))


class InvoiceLine(TenantOwned, db.Model):
    """One line: a charge of the period, or the calls to one country (quantity in minutes)."""
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(255), default="")
    country: Mapped[str | None] = mapped_column(String(2))
    calls: Mapped[int | None] = mapped_column()                     # calls lines: how many calls
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))  # minutes (calls) or units
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))  # average per minute for calls
    amount: Mapped[Decimal] = mapped_column(Money)


class InvoiceTax(TenantOwned, db.Model):
    """One tax of an invoice, as computed when it was built (a copy of the tax's name/rate)."""
    __tablename__ = "invoice_taxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    tax_id: Mapped[int | None] = mapped_column(ForeignKey("taxes.id"))
    name: Mapped[str] = mapped_column(String(80))
    rate: Mapped[Decimal] = mapped_column(Rate)
    compound: Mapped[bool] = mapped_column(default=False)
    base: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)


class InvoicePayment(AccountOwned, db.Model):
    """A payment applied to an invoice, once per key (the payment's ledger key): a redelivered
    webhook applies nothing twice. `amount` is what went to the invoice; `received` the whole
    payment (the rest stayed on the balance as credit)."""
    __tablename__ = "invoice_payments"
    __table_args__ = (UniqueConstraint("invoice_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    key: Mapped[str] = mapped_column(String(160))
    amount: Mapped[Decimal] = mapped_column(Money)
    received: Mapped[Decimal] = mapped_column(Money)
    payment_id: Mapped[int | None] = mapped_column()
    ledger_entry_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Statement(AccountOwned, db.Model):
    """A prepaid account's monthly statement: balance at the period start, credits in, charges
    out, balance at the end (opening + credits + charges == closing; charges are negative)."""
    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("account_id", "period_key"),
                      Index("ix_statements_tenant_period", "tenant_id", "period_start"))

    id: Mapped[int] = mapped_column(primary_key=True)
    period_key: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)                  # exclusive
    currency: Mapped[str] = mapped_column(String(3))
    opening_balance: Mapped[Decimal] = mapped_column(Money)
    credits: Mapped[Decimal] = mapped_column(Money)
    charges: Mapped[Decimal] = mapped_column(Money)
    closing_balance: Mapped[Decimal] = mapped_column(Money)
    customer: Mapped[dict] = mapped_column(JSON, default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatementLine(TenantOwned, db.Model):
    """A statement's lines, stored when it is built: credits and charges by kind, calls by country."""
    __tablename__ = "statement_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(20))                   # a ledger kind, or "calls"
    description: Mapped[str] = mapped_column(String(255), default="")
    country: Mapped[str | None] = mapped_column(String(2))
    calls: Mapped[int | None] = mapped_column()
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))  # minutes for calls
    amount: Mapped[Decimal] = mapped_column(Money)


class Receipt(AccountOwned, db.Model):
    """A receipt for one credit of a prepaid account, numbered in the receipt series. `amount`
    is what was received (tax included), `net` what reached the balance after the taxes."""
    __tablename__ = "receipts"
    __table_args__ = (UniqueConstraint("account_id", "ledger_key"), UniqueConstraint("tenant_id", "number"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_key: Mapped[str] = mapped_column(String(160))            # the credit's ledger key
    ledger_entry_id: Mapped[int | None] = mapped_column()
    payment_id: Mapped[int | None] = mapped_column()
    number: Mapped[str] = mapped_column(String(80))
    series: Mapped[str] = mapped_column(String(60))
    sequence: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(20))                   # payment | credit
    method: Mapped[str] = mapped_column(String(24), default="")
    reference: Mapped[str] = mapped_column(String(120), default="")
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)
    tax_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    net: Mapped[Decimal] = mapped_column(Money)
    taxes: Mapped[list] = mapped_column(JSON, default=list)         # [{name, rate, compound, base, amount}]
    customer: Mapped[dict] = mapped_column(JSON, default=dict)
    seller: Mapped[dict] = mapped_column(JSON, default=dict)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)


class InvoiceRun(PeriodRun, TenantOwned, db.Model):
    """One tenant's document run for one closed period key (invoices for postpaid accounts,
    statements for prepaid ones); counts add up over every pass of the run."""
    __tablename__ = "invoice_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "period"),)

    invoiced: Mapped[int] = mapped_column(default=0)
    statement: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)


class InvoiceRunAccount(AccountOwned, db.Model):
    """What a run did for an account: invoiced, statement, skipped (a zero invoice the tenant
    asked to skip: the period counts as handled), failed (retried by the next pass)."""
    __tablename__ = "invoice_run_accounts"
    __table_args__ = (UniqueConstraint("run_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("invoice_runs.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(255), default="")
    invoice_id: Mapped[int | None] = mapped_column()
    statement_id: Mapped[int | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
