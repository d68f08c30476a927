"""Billing cycle (issue 16): recurring charges, their runs, extras, owed charges; accounts get a
billing schedule (monthly on day 1 by default, as every account was billed so far) and the
reason of a suspension made by the cycle (blank for existing accounts).

Revision ID: i16_billing_cycle
Revises: i20_portals
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'i16_billing_cycle'
down_revision = 'i14_calls_browser'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('charge_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('passes', sa.Integer(), nullable=False),
    sa.Column('charged', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('owed', sa.Integer(), nullable=False),
    sa.Column('suspended', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_charge_runs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charge_runs')),
    sa.UniqueConstraint('tenant_id', 'period', name=op.f('uq_charge_runs_tenant_id_period'))
    )
    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charge_runs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('charge_run_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_charge_run_accounts_account_id_accounts')),
    sa.ForeignKeyConstraint(['run_id'], ['charge_runs.id'], name=op.f('fk_charge_run_accounts_run_id_charge_runs')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_charge_run_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charge_run_accounts')),
    sa.UniqueConstraint('run_id', 'account_id', name=op.f('uq_charge_run_accounts_run_id_account_id'))
    )
    with op.batch_alter_table('charge_run_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_charge_run_accounts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_charge_run_accounts_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_charge_run_accounts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('recurring_charges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('item', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('ledger_key', sa.String(length=160), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_recurring_charges_account_id_accounts')),
    sa.ForeignKeyConstraint(['run_id'], ['charge_runs.id'], name=op.f('fk_recurring_charges_run_id_charge_runs')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recurring_charges_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_charges')),
    sa.UniqueConstraint('account_id', 'kind', 'item', 'period', name=op.f('uq_recurring_charges_account_id_kind_item_period'))
    )
    with op.batch_alter_table('recurring_charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recurring_charges_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_recurring_charges_account_status', ['account_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_recurring_charges_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('billing_extras',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=120), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_billing_extras_account_id_accounts')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_billing_extras_created_by_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_billing_extras_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_extras'))
    )
    with op.batch_alter_table('billing_extras', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_extras_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_extras_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_reason', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('billing_schedule', sa.String(length=10), nullable=False,
                                      server_default='monthly'))
        batch_op.add_column(sa.Column('billing_day', sa.Integer(), nullable=False, server_default='1'))



def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('billing_day')
        batch_op.drop_column('billing_schedule')
        batch_op.drop_column('status_reason')

    with op.batch_alter_table('billing_extras', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_extras_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_billing_extras_account_id'))

    op.drop_table('billing_extras')
    with op.batch_alter_table('recurring_charges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recurring_charges_tenant_id'))
        batch_op.drop_index('ix_recurring_charges_account_status')
        batch_op.drop_index(batch_op.f('ix_recurring_charges_account_id'))

    op.drop_table('recurring_charges')
    with op.batch_alter_table('charge_run_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charge_run_accounts_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_charge_run_accounts_run_id'))
        batch_op.drop_index(batch_op.f('ix_charge_run_accounts_account_id'))

    op.drop_table('charge_run_accounts')
    with op.batch_alter_table('charge_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_charge_runs_tenant_id'))

    op.drop_table('charge_runs')
