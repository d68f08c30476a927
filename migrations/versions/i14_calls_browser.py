"""The calls browser (issue 14): keyset index on calls by tenant, and re-rating runs.

Revision ID: i14_calls_browser
Revises: i20_portals
Create Date: 2026-12-04

`ix_calls_tenant_started` (tenant_id, started_at, id) serves the browser's keyset pages per
tenant; `ix_calls_rating_error`, partial (rating_error <> ''), its "rating error" filter. On
PostgreSQL they are built CONCURRENTLY (outside the migration's transaction), so an
operator's calls table, written all day by the AMI watcher, is never locked for the build.
`call_reratings` records each "re-rate every unrated call matching the filter" request.
"""
from alembic import op
import sqlalchemy as sa

revision = 'i14_calls_browser'
down_revision = "i14_safeguards"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_calls_tenant_started"
                       " ON calls (tenant_id, started_at, id)")
            op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_calls_rating_error"
                       " ON calls (started_at, id) WHERE rating_error <> ''")
    else:
        op.create_index('ix_calls_tenant_started', 'calls', ['tenant_id', 'started_at', 'id'], unique=False)
        op.create_index('ix_calls_rating_error', 'calls', ['started_at', 'id'], unique=False,
                        sqlite_where=sa.text("rating_error <> ''"))
    op.create_table(
        'call_reratings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=64), nullable=False),
        sa.Column('filters', sa.JSON(), nullable=False),
        sa.Column('all_tenants', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('rated', sa.Integer(), nullable=False),
        sa.Column('charged', sa.Integer(), nullable=False),
        sa.Column('errors', sa.Integer(), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.Column('message', sa.String(length=255), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_call_reratings_created_by_id_users')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_call_reratings_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_reratings')),
        sa.UniqueConstraint('job_id', name=op.f('uq_call_reratings_job_id')),
    )
    with op.batch_alter_table('call_reratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_reratings_tenant_id'), ['tenant_id'], unique=False)


def downgrade():
    with op.batch_alter_table('call_reratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_reratings_tenant_id'))
    op.drop_table('call_reratings')
    op.drop_index('ix_calls_rating_error', table_name='calls')
    op.drop_index('ix_calls_tenant_started', table_name='calls')
