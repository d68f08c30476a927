"""Call control: number rules (allow/deny prefixes per account).

Revision ID: i19_call_control
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "i19_call_control"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "number_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_number_rules_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_number_rules_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_rules")),
        sa.UniqueConstraint("account_id", "kind", "prefix", name=op.f("uq_number_rules_account_id_kind_prefix")),
        sa.CheckConstraint("kind in ('allow', 'deny')", name=op.f("ck_number_rules_kind")),
    )
    with op.batch_alter_table("number_rules") as batch:
        batch.create_index("ix_number_rules_tenant_id", ["tenant_id"])
        batch.create_index("ix_number_rules_account_id", ["account_id"])


def downgrade():
    op.drop_table("number_rules")
