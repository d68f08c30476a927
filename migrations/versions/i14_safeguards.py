"""Safeguards (issue 14): each reseller's limit above which a ledger adjustment needs a second
confirmation.

Revision ID: i14_safeguards
Revises: i20_portals
Create Date: 2026-12-04

Existing resellers get the default limit of 1000 (in their own currency) through the server
default; nothing else changes.
"""
from alembic import op
import sqlalchemy as sa

revision = 'i14_safeguards'
down_revision = "i20_auto_reports"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('adjustment_confirm_limit', sa.Numeric(precision=18, scale=4),
                                      server_default='1000', nullable=False))


def downgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('adjustment_confirm_limit')
