"""Reseller names unique among siblings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Existing siblings that share a name (any case) keep the oldest as it is; the others get their
short name appended ("Acme (acme-2)"), so the constraint can be created on operators' data.
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, parent_id, name, slug FROM tenants ORDER BY id")).all()
    seen = set()
    for tenant_id, parent_id, name, slug in rows:
        key = (parent_id, (name or "").lower())
        if key in seen:
            conn.execute(sa.text("UPDATE tenants SET name = :name WHERE id = :id"),
                         {"name": f"{name} ({slug})"[:120], "id": tenant_id})
        seen.add(key)
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_tenants_parent_id_name'), ['parent_id', 'name'])


def downgrade():
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_tenants_parent_id_name'), type_='unique')
