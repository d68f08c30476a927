"""Automatic alerts (issue 16, point 7): alert settings on an account's details (schedule, stop
after N days, sign-in notification) and the alert conditions in force (one per account and kind).

Revision ID: i16_alerts
Revises: i16_billing_cycle
Create Date: 2026-12-04

Existing accounts: alerts once per crossing, no sign-in notification; no condition is recorded,
so the first sweep sends each condition in force once (an account already below its level is
told once, as if it had just crossed).
"""
from alembic import op
import sqlalchemy as sa

revision = "i16_alerts"
down_revision = "i16_billing_cycle"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("account_details", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alert_schedule", sa.String(length=8), nullable=False, server_default="once"))
        batch_op.add_column(sa.Column("alert_stop_days", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("signin_notification", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "account_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_account_alerts_account_id_accounts")),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                name=op.f("fk_account_alerts_notification_id_notifications")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_account_alerts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_alerts")),
        sa.UniqueConstraint("account_id", "kind", name=op.f("uq_account_alerts_account_id_kind")),
    )
    with op.batch_alter_table("account_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_alerts_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_alerts_tenant_id"), ["tenant_id"], unique=False)


def downgrade():
    op.drop_table("account_alerts")
    with op.batch_alter_table("account_details", schema=None) as batch_op:
        batch_op.drop_column("signin_notification")
        batch_op.drop_column("alert_stop_days")
        batch_op.drop_column("alert_schedule")
