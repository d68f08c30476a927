"""Invoice documents (issue 17, points 5 and 6): the reseller's logo on its invoice settings,
and a binary attachment (an invoice's PDF) on an outbox email.

Revision ID: i17_invoice_docs
Revises: i17_invoicing
Create Date: 2026-12-05

Existing rows: no logo (logo_type ""), and emails keep their text attachment (a CSV report)
with no binary one.
"""
from alembic import op
import sqlalchemy as sa

revision = "i17_invoice_docs"
down_revision = "i17_invoicing"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("invoice_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logo", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("logo_type", sa.String(length=40), nullable=False, server_default=""))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachment_data", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("attachment_type", sa.String(length=80), nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("attachment_type")
        batch_op.drop_column("attachment_data")
    with op.batch_alter_table("invoice_settings", schema=None) as batch_op:
        batch_op.drop_column("logo_type")
        batch_op.drop_column("logo")
