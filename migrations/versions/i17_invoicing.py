"""Invoices, receipts and taxes (issue 17): the taxes list and each account's taxes, tax
exemption on accounts, invoice settings and gapless sequences, invoices with their lines, taxes
and payments, prepaid statements and receipts, the monthly document runs.

Revision ID: i17_invoicing
Revises: i16_user_changes
Create Date: 2026-12-05

Data: each distinct non-zero `accounts.vat_rate` of a tenant becomes a tax "VAT <rate>%" of
that tenant (in rate order, not compound), and the accounts with that rate are linked to it.
`accounts.vat_rate` stays, unused (documented on the model). No account is tax exempt.
"""
from datetime import datetime, timezone
from decimal import Decimal

from alembic import op
import sqlalchemy as sa

revision = "i17_invoicing"
down_revision = "i16_user_changes"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=18, scale=4)
RATE = sa.Numeric(precision=7, scale=4)


def _owned(table: str, *, account: bool):
    cols = [sa.Column("tenant_id", sa.Integer(), nullable=False)]
    fks = [sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"))]
    if account:
        cols.append(sa.Column("account_id", sa.Integer(), nullable=False))
        fks.append(sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts")))
    return cols + fks


def _indexes(table: str, *columns: str):
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade():
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        # A plain string default: an expression would make SQLite batch mode rebuild the table,
        # which cannot copy its generated columns. "0" is a valid boolean literal on PostgreSQL too.
        batch_op.add_column(sa.Column("tax_exempt", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("tax_exempt_reason", sa.String(length=255), nullable=False, server_default=""))

    op.create_table(
        "taxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("compound", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        *_owned("taxes", account=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxes")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_taxes_tenant_id_name")),
    )
    _indexes("taxes", "tenant_id")
    op.create_table(
        "account_taxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tax_id", sa.Integer(), nullable=False),
        *_owned("account_taxes", account=True),
        sa.ForeignKeyConstraint(["tax_id"], ["taxes.id"], name=op.f("fk_account_taxes_tax_id_taxes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_taxes")),
        sa.UniqueConstraint("account_id", "tax_id", name=op.f("uq_account_taxes_account_id_tax_id")),
    )
    _indexes("account_taxes", "account_id", "tax_id", "tenant_id")

    op.create_table(
        "invoice_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number_prefix", sa.String(length=40), nullable=False),
        sa.Column("receipt_prefix", sa.String(length=40), nullable=False),
        sa.Column("number_digits", sa.Integer(), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("tax_number", sa.String(length=60), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("decimals_shown", sa.Integer(), nullable=True),
        sa.Column("include_rate_table", sa.Boolean(), nullable=False),
        sa.Column("include_payment_summary", sa.Boolean(), nullable=False),
        sa.Column("skip_zero", sa.Boolean(), nullable=False),
        sa.Column("footer", sa.Text(), nullable=False),
        sa.Column("issue_hour", sa.Integer(), nullable=False),
        sa.Column("invoice_format", sa.String(length=4), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        *_owned("invoice_settings", account=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_invoice_settings_tenant_id")),
    )
    _indexes("invoice_settings", "tenant_id")
    op.create_table(
        "invoice_sequences",
        sa.Column("series", sa.String(length=60), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        *_owned("invoice_sequences", account=False),
        sa.PrimaryKeyConstraint("tenant_id", "series", name=op.f("pk_invoice_sequences")),
    )
    _indexes("invoice_sequences", "tenant_id")

    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("period_key", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("number", sa.String(length=80), nullable=True),
        sa.Column("series", sa.String(length=60), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("tax_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("amount_paid", MONEY, nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("voided_at", sa.DateTime(), nullable=True),
        sa.Column("void_reason", sa.String(length=255), nullable=False),
        sa.Column("credit_note_for_id", sa.Integer(), nullable=True),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("tax_exempt_reason", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        *_owned("invoices", account=True),
        sa.ForeignKeyConstraint(["credit_note_for_id"], ["invoices.id"],
                                name=op.f("fk_invoices_credit_note_for_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("account_id", "kind", "period_key", name=op.f("uq_invoices_account_id_kind_period_key")),
        sa.UniqueConstraint("tenant_id", "number", name=op.f("uq_invoices_tenant_id_number")),
    )
    _indexes("invoices", "account_id", "tenant_id")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index("ix_invoices_tenant_period", ["tenant_id", "period_start"], unique=False)
        batch_op.create_index("ix_invoices_tenant_status", ["tenant_id", "status"], unique=False)
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        *_owned("invoice_lines", account=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    _indexes("invoice_lines", "invoice_id", "tenant_id")
    op.create_table(
        "invoice_taxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tax_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("compound", sa.Boolean(), nullable=False),
        sa.Column("base", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        *_owned("invoice_taxes", account=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_taxes_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["tax_id"], ["taxes.id"], name=op.f("fk_invoice_taxes_tax_id_taxes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_taxes")),
    )
    _indexes("invoice_taxes", "invoice_id", "tenant_id")
    op.create_table(
        "invoice_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("received", MONEY, nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        *_owned("invoice_payments", account=True),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_payments_invoice_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_payments")),
        sa.UniqueConstraint("invoice_id", "key", name=op.f("uq_invoice_payments_invoice_id_key")),
    )
    _indexes("invoice_payments", "account_id", "invoice_id", "tenant_id")

    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_key", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("opening_balance", MONEY, nullable=False),
        sa.Column("credits", MONEY, nullable=False),
        sa.Column("charges", MONEY, nullable=False),
        sa.Column("closing_balance", MONEY, nullable=False),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        *_owned("statements", account=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint("account_id", "period_key", name=op.f("uq_statements_account_id_period_key")),
    )
    _indexes("statements", "account_id", "tenant_id")
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.create_index("ix_statements_tenant_period", ["tenant_id", "period_start"], unique=False)
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        *_owned("statement_lines", account=False),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"],
                                name=op.f("fk_statement_lines_statement_id_statements")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statement_lines")),
    )
    _indexes("statement_lines", "statement_id", "tenant_id")
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_key", sa.String(length=160), nullable=False),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=80), nullable=False),
        sa.Column("series", sa.String(length=60), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("tax_total", MONEY, nullable=False),
        sa.Column("net", MONEY, nullable=False),
        sa.Column("taxes", sa.JSON(), nullable=False),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        *_owned("receipts", account=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("account_id", "ledger_key", name=op.f("uq_receipts_account_id_ledger_key")),
        sa.UniqueConstraint("tenant_id", "number", name=op.f("uq_receipts_tenant_id_number")),
    )
    _indexes("receipts", "account_id", "tenant_id")

    op.create_table(
        "invoice_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("invoiced", sa.Integer(), nullable=False),
        sa.Column("statement", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        *_owned("invoice_runs", account=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_runs")),
        sa.UniqueConstraint("tenant_id", "period", name=op.f("uq_invoice_runs_tenant_id_period")),
    )
    _indexes("invoice_runs", "tenant_id")
    op.create_table(
        "invoice_run_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("statement_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        *_owned("invoice_run_accounts", account=True),
        sa.ForeignKeyConstraint(["run_id"], ["invoice_runs.id"], name=op.f("fk_invoice_run_accounts_run_id_invoice_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_run_accounts")),
        sa.UniqueConstraint("run_id", "account_id", name=op.f("uq_invoice_run_accounts_run_id_account_id")),
    )
    _indexes("invoice_run_accounts", "account_id", "run_id", "tenant_id")

    _vat_rates_to_taxes()


def rate_label(rate: Decimal) -> str:
    """20.000 -> "20", 7.500 -> "7.5"."""
    text = format(Decimal(rate).normalize(), "f")
    return text


def _vat_rates_to_taxes():
    """Each distinct non-zero VAT rate of a tenant: a tax "VAT <rate>%", its accounts linked."""
    conn = op.get_bind()
    accounts = sa.table("accounts", sa.column("id", sa.Integer()), sa.column("tenant_id", sa.Integer()),
                        sa.column("vat_rate", sa.Numeric(6, 3)))
    taxes = sa.table("taxes", sa.column("id", sa.Integer()), sa.column("tenant_id", sa.Integer()),
                     sa.column("name", sa.String()), sa.column("rate", RATE), sa.column("position", sa.Integer()),
                     sa.column("compound", sa.Boolean()), sa.column("active", sa.Boolean()),
                     sa.column("created_at", sa.DateTime()))
    links = sa.table("account_taxes", sa.column("tenant_id", sa.Integer()), sa.column("account_id", sa.Integer()),
                     sa.column("tax_id", sa.Integer()))
    pairs = conn.execute(sa.select(accounts.c.tenant_id, accounts.c.vat_rate)
                         .where(accounts.c.vat_rate != 0).distinct()
                         .order_by(accounts.c.tenant_id, accounts.c.vat_rate)).all()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    position: dict[int, int] = {}
    for tenant_id, rate in pairs:
        position[tenant_id] = position.get(tenant_id, 0) + 1
        rate = Decimal(rate)
        conn.execute(taxes.insert().values(tenant_id=tenant_id, name=f"VAT {rate_label(rate)}%", rate=rate,
                                           position=position[tenant_id], compound=False, active=True,
                                           created_at=now))
        tax_id = conn.execute(sa.select(taxes.c.id).where(taxes.c.tenant_id == tenant_id,
                                                          taxes.c.name == f"VAT {rate_label(rate)}%")).scalar_one()
        conn.execute(links.insert().from_select(
            ["tenant_id", "account_id", "tax_id"],
            sa.select(accounts.c.tenant_id, accounts.c.id, sa.literal(tax_id, sa.Integer()))
            .where(accounts.c.tenant_id == tenant_id, accounts.c.vat_rate == rate)))


def downgrade():
    for table in ("invoice_run_accounts", "invoice_runs", "receipts", "statement_lines", "statements",
                  "invoice_payments", "invoice_taxes", "invoice_lines", "invoices", "invoice_sequences",
                  "invoice_settings", "account_taxes", "taxes"):
        op.drop_table(table)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("tax_exempt_reason")
        batch_op.drop_column("tax_exempt")
