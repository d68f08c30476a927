"""Automatic usage reports (issue 20, point 8): an account's report schedule and whether the
customer gets it too; letters that go once per thing they report (a unique key per tenant) and
carry one CSV attachment.

Revision ID: i20_auto_reports
Revises: i14_call_precision
Create Date: 2026-12-04

Existing accounts get "off" (nothing is sent until a reseller turns reports on); existing
letters have no key and no attachment.
"""
from alembic import op
import sqlalchemy as sa

revision = "i20_auto_reports"
down_revision = "i14_call_precision"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("account_details", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_schedule", sa.String(length=8), nullable=False, server_default="off"))
        batch_op.add_column(sa.Column("report_to_customer", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("attachment_name", sa.String(length=120), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("attachment", sa.Text(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_notifications_tenant_id_dedupe_key"),
                                          ["tenant_id", "dedupe_key"])


def downgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_notifications_tenant_id_dedupe_key"), type_="unique")
        batch_op.drop_column("attachment")
        batch_op.drop_column("attachment_name")
        batch_op.drop_column("dedupe_key")
    with op.batch_alter_table("account_details", schema=None) as batch_op:
        batch_op.drop_column("report_to_customer")
        batch_op.drop_column("report_schedule")
