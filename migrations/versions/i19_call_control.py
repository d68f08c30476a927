"""Call control: number rules, carriers, route groups and routes, customer routes.

Revision ID: i19_call_control
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "i19_call_control"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "number_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_number_rules_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_number_rules_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_rules")),
        sa.UniqueConstraint("account_id", "kind", "prefix", name=op.f("uq_number_rules_account_id_kind_prefix")),
        sa.CheckConstraint("kind in ('allow', 'deny', 'callerid')", name=op.f("ck_number_rules_kind")),
    )
    with op.batch_alter_table("number_rules") as batch:
        batch.create_index("ix_number_rules_tenant_id", ["tenant_id"])
        batch.create_index("ix_number_rules_account_id", ["account_id"])

    op.create_table('route_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('strategy', sa.String(length=10), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("strategy in ('lcr', 'priority')", name=op.f('ck_route_groups_strategy')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_route_groups_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_route_groups')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_route_groups_tenant_id_name'))
    )
    with op.batch_alter_table('route_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_route_groups_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('carriers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('secret', sa.String(length=80), nullable=False),
    sa.Column('strip_digits', sa.Integer(), nullable=False),
    sa.Column('add_prefix', sa.String(length=20), nullable=False),
    sa.Column('buy_rate_sheet_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['buy_rate_sheet_id'], ['rate_sheets.id'], name=op.f('fk_carriers_buy_rate_sheet_id_rate_sheets')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_carriers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carriers')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_carriers_tenant_id_name'))
    )
    with op.batch_alter_table('carriers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carriers_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('routes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['route_groups.id'], name=op.f('fk_routes_group_id_route_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_routes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routes')),
    sa.UniqueConstraint('group_id', 'prefix', name=op.f('uq_routes_group_id_prefix'))
    )
    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routes_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('customer_routes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_customer_routes_account_id_accounts')),
    sa.ForeignKeyConstraint(['extension_id'], ['extensions.id'], name=op.f('fk_customer_routes_extension_id_extensions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['route_groups.id'], name=op.f('fk_customer_routes_group_id_route_groups')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_customer_routes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_routes')),
    sa.UniqueConstraint('account_id', 'extension_id', name=op.f('uq_customer_routes_account_id_extension_id'))
    )
    with op.batch_alter_table('customer_routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_routes_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_routes_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_routes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('route_carriers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('route_id', sa.Integer(), nullable=False),
    sa.Column('carrier_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['carrier_id'], ['carriers.id'], name=op.f('fk_route_carriers_carrier_id_carriers')),
    sa.ForeignKeyConstraint(['route_id'], ['routes.id'], name=op.f('fk_route_carriers_route_id_routes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_route_carriers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_route_carriers')),
    sa.UniqueConstraint('route_id', 'carrier_id', name=op.f('uq_route_carriers_route_id_carrier_id'))
    )
    with op.batch_alter_table('route_carriers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_route_carriers_carrier_id'), ['carrier_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_route_carriers_route_id'), ['route_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_route_carriers_tenant_id'), ['tenant_id'], unique=False)

    op.create_table("translation_rules",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("match", sa.String(length=32), nullable=False),
    sa.Column("strip_digits", sa.Integer(), nullable=False),
    sa.Column("add_prefix", sa.String(length=20), nullable=False),
    sa.Column("national_to_e164", sa.Boolean(), nullable=False),
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_translation_rules_account_id_accounts")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_translation_rules_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_translation_rules"))
    )
    with op.batch_alter_table("translation_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_translation_rules_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_translation_rules_tenant_id"), ["tenant_id"], unique=False)


def downgrade():
    for table in ("translation_rules", "route_carriers", "customer_routes", "routes", "carriers", "route_groups", "number_rules"):
        op.drop_table(table)
