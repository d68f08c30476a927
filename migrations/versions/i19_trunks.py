"""Customer IP trunks (issue 19, point 7): customer_trunks, PJSIP identify rows, ps_endpoints.trunk_id;
the carrier of each call and the platform's cost of it (point 2): calls.carrier_id, calls.carrier_cost.

Revision ID: i19_trunks
Revises: i16_billing_cycle
Create Date: 2026-12-04

Additive: new tables and nullable columns; existing endpoints keep trunk_id NULL, existing calls
have no carrier (NULL: unknown, not free).
"""
from alembic import op
import sqlalchemy as sa

revision = "i19_trunks"
down_revision = "i16_alerts"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "customer_trunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("hosts", sa.String(length=1024), nullable=False),
        sa.Column("call_limit", sa.Integer(), nullable=False),
        sa.Column("cps_limit", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_customer_trunks_account_id_accounts")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_customer_trunks_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_trunks")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_customer_trunks_account_id_name")),
    )
    with op.batch_alter_table("customer_trunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_trunks_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_trunks_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "ps_endpoint_id_ips",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=True),
        sa.Column("match", sa.String(length=80), nullable=True),
        sa.Column("srv_lookups", sa.String(length=5), nullable=True),
        sa.Column("match_header", sa.String(length=255), nullable=True),
        sa.Column("trunk_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ps_endpoint_id_ips_account_id_accounts")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ps_endpoint_id_ips_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["trunk_id"], ["customer_trunks.id"],
                                name=op.f("fk_ps_endpoint_id_ips_trunk_id_customer_trunks"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ps_endpoint_id_ips")),
    )
    with op.batch_alter_table("ps_endpoint_id_ips", schema=None) as batch_op:
        for column in ("account_id", "endpoint", "tenant_id", "trunk_id"):
            batch_op.create_index(batch_op.f(f"ix_ps_endpoint_id_ips_{column}"), [column], unique=False)
    with op.batch_alter_table("ps_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trunk_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ps_endpoints_trunk_id"), ["trunk_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_ps_endpoints_trunk_id_customer_trunks"), "customer_trunks",
                                    ["trunk_id"], ["id"], ondelete="CASCADE")


    with op.batch_alter_table("switch_cdrs", schema=None) as batch_op:    # cdr_pgsql fills CDR(carrier)
        batch_op.add_column(sa.Column("carrier", sa.String(length=20), nullable=False, server_default=""))
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carrier_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("carrier_cost", sa.Numeric(precision=18, scale=4), nullable=True))


def downgrade():
    with op.batch_alter_table("switch_cdrs", schema=None) as batch_op:
        batch_op.drop_column("carrier")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("carrier_cost")
        batch_op.drop_column("carrier_id")
    with op.batch_alter_table("ps_endpoints", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ps_endpoints_trunk_id_customer_trunks"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ps_endpoints_trunk_id"))
        batch_op.drop_column("trunk_id")
    op.drop_table("ps_endpoint_id_ips")
    op.drop_table("customer_trunks")
