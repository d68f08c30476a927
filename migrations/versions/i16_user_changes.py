"""Scheduled user-count decreases (issue 16, point 4): scheduled_user_changes (at most one waiting
per account: a partial unique index), and the reseller's choice to apply decreases at once with a
prorated credit (tenants.user_decrease_immediate).

Revision ID: i16_user_changes
Revises: i19_trunks
Create Date: 2026-12-04

Additive. Existing resellers get False: a decrease now waits for the start of the next billing
period (until now it applied at once, without a credit). Past user-count orders keep their meaning
(`cycle.users_at` reads them as before).
"""
from alembic import op
import sqlalchemy as sa

revision = "i16_user_changes"
down_revision = "i19_trunks"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_decrease_immediate", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "scheduled_user_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_users", sa.Integer(), nullable=False),
        sa.Column("to_users", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("note", sa.String(length=120), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_scheduled_user_changes_account_id_accounts")),
        sa.ForeignKeyConstraint(["closed_by_id"], ["users.id"],
                                name=op.f("fk_scheduled_user_changes_closed_by_id_users")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_scheduled_user_changes_created_by_id_users")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_scheduled_user_changes_order_id_orders")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_scheduled_user_changes_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_user_changes")),
    )
    with op.batch_alter_table("scheduled_user_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduled_user_changes_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scheduled_user_changes_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("uq_scheduled_user_changes_waiting", ["account_id"], unique=True,
                              postgresql_where=sa.text("status = 'scheduled'"),
                              sqlite_where=sa.text("status = 'scheduled'"))


def downgrade():
    op.drop_table("scheduled_user_changes")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("user_decrease_immediate")
