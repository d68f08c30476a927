"""The switch's own CDRs (cdr_pgsql) and what reconciliation records on calls.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Adds `switch_cdrs` (written by Asterisk's cdr_pgsql, matched to calls by the reconciler),
and two columns on calls: `measured_billsec` (the watcher's measure where the switch's billsec
differs) and `recovered` (billed from the switch's CDRs). Existing calls: NULL and false.
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'switch_cdrs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('calldate', sa.DateTime(), nullable=False),
        sa.Column('answer', sa.DateTime(), nullable=True),
        sa.Column('end', sa.DateTime(), nullable=True),
        sa.Column('clid', sa.String(length=80), nullable=False),
        sa.Column('src', sa.String(length=80), nullable=False),
        sa.Column('dst', sa.String(length=80), nullable=False),
        sa.Column('dcontext', sa.String(length=80), nullable=False),
        sa.Column('channel', sa.String(length=80), nullable=False),
        sa.Column('dstchannel', sa.String(length=80), nullable=False),
        sa.Column('lastapp', sa.String(length=80), nullable=False),
        sa.Column('lastdata', sa.String(length=80), nullable=False),
        sa.Column('duration', sa.Integer(), nullable=False),
        sa.Column('billsec', sa.Integer(), nullable=False),
        sa.Column('disposition', sa.String(length=45), nullable=False),
        sa.Column('amaflags', sa.Integer(), nullable=False),
        sa.Column('accountcode', sa.String(length=20), nullable=False),
        sa.Column('uniqueid', sa.String(length=150), nullable=False),
        sa.Column('userfield', sa.String(length=255), nullable=False),
        sa.Column('peeraccount', sa.String(length=20), nullable=False),
        sa.Column('linkedid', sa.String(length=150), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('server', sa.String(length=64), nullable=False),
        sa.Column('reconciled_at', sa.DateTime(), nullable=True),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_switch_cdrs')),
    )
    with op.batch_alter_table('switch_cdrs', schema=None) as batch_op:
        batch_op.create_index('ix_switch_cdrs_pending', ['id'], unique=False,
                              postgresql_where=sa.text('reconciled_at IS NULL'),
                              sqlite_where=sa.text('reconciled_at IS NULL'))
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('measured_billsec', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('recovered', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('recovered')
        batch_op.drop_column('measured_billsec')
    with op.batch_alter_table('switch_cdrs', schema=None) as batch_op:
        batch_op.drop_index('ix_switch_cdrs_pending', postgresql_where=sa.text('reconciled_at IS NULL'),
                            sqlite_where=sa.text('reconciled_at IS NULL'))
    op.drop_table('switch_cdrs')
