"""Call charge precision: the decimals a reseller's call costs are rounded to (issue 14).

Revision ID: i14_call_precision
Revises: i20_portals
Create Date: 2026-12-04

Resellers that exist now keep 2 places (the cent), so the bills of the running period do not
change under them; a reseller created after this migration starts at 4 (the column's default),
and an owner can change it at /reseller/settings. docs/rating.md, "Call charge precision".
"""
from alembic import op
import sqlalchemy as sa

revision = 'i14_call_precision'
down_revision = "i20_portals"
branch_labels = None
depends_on = None


def upgrade():
    # Added with 2 so every existing row gets 2; then the default becomes 4 for new rows.
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('call_charge_places', sa.Integer(), server_default='2', nullable=False))
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.alter_column('call_charge_places', existing_type=sa.Integer(), existing_nullable=False,
                              server_default='4')
        batch_op.create_check_constraint(op.f('ck_tenants_call_charge_places'),
                                         'call_charge_places BETWEEN 2 AND 4')


def downgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tenants_call_charge_places'), type_='check')
        batch_op.drop_column('call_charge_places')
