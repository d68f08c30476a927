"""Payment receipts tracked on the payment (issue 18, point 8): payments.receipt_status and the
partial index of the receipts still to queue.

Revision ID: i18_receipts
Revises: i17_invoice_docs
Create Date: 2026-12-04

Additive: existing payments get "" (their receipts went by the per-payment job of before), so
none is sent twice.
"""
from alembic import op
import sqlalchemy as sa

revision = "i18_receipts"
down_revision = "i17_invoice_docs"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_status", sa.String(length=8), server_default="", nullable=False))
        batch_op.create_index("ix_payments_receipt_due", ["id"], unique=False,
                              postgresql_where=sa.text("receipt_status = 'due'"),
                              sqlite_where=sa.text("receipt_status = 'due'"))


def downgrade():
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_receipt_due")
        batch_op.drop_column("receipt_status")
