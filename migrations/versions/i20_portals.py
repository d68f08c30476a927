"""Per-login permissions of customer portal logins; account details and customer groups (issue 20).

Revision ID: i20_portals
Revises: i18_payments
Create Date: 2026-12-04

Existing logins keep NULL: an account administrator holds every permission by role, and the
new roles (sub-admin, read-only, portal user) have no rows yet. Account details live in their
own table: an account without a row has blank details, no agent, no group.
"""
from alembic import op
import sqlalchemy as sa

revision = 'i20_portals'
down_revision = "i18_payments"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('permissions', sa.JSON(), nullable=True))
    op.create_table(
        'customer_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_customer_groups_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_groups')),
        sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_customer_groups_tenant_id_name')),
    )
    with op.batch_alter_table('customer_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_groups_tenant_id'), ['tenant_id'], unique=False)
    op.create_table(
        'account_details',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('website', sa.String(length=255), nullable=False),
        sa.Column('fax', sa.String(length=32), nullable=False),
        sa.Column('phone2', sa.String(length=32), nullable=False),
        sa.Column('low_balance_email', sa.String(length=254), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('agent_commission_rate', sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=True),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_details_account_id_accounts')),
        sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_account_details_agent_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['group_id'], ['customer_groups.id'],
                                name=op.f('fk_account_details_group_id_customer_groups'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_account_details_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_details')),
        sa.UniqueConstraint('account_id', name=op.f('uq_account_details_account_id')),
    )
    with op.batch_alter_table('account_details', schema=None) as batch_op:
        for column in ('account_id', 'agent_id', 'group_id', 'tenant_id'):
            batch_op.create_index(batch_op.f(f'ix_account_details_{column}'), [column], unique=False)


def downgrade():
    op.drop_table('account_details')
    op.drop_table('customer_groups')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('permissions')
