"""A prepaid card top-up's taxes kept on its payment (issue 18, point 8): payments.receipt_taxes,
from which the receipts job issues the numbered receipt, off the webhook's path.

Revision ID: i18_receipt_taxes
Revises: i16_accounts_fillfactor
Create Date: 2026-12-04

Additive: a nullable column. Existing payments get NULL: their receipts were issued with their
credit, as before.
"""
from alembic import op
import sqlalchemy as sa

revision = "i18_receipt_taxes"
down_revision = "i16_accounts_fillfactor"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_taxes", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("receipt_taxes")
