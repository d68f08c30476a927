"""Accounts-list search matches any part of name, company and email: trigram indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

PostgreSQL: pg_trgm (a trusted extension: the database owner may create it) in the public
schema, and one GIN index per search key. SQLite: plain indexes, unused by LIKE '%…%'.
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

KEYS = ("name_key", "company_key", "email_key")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for key in KEYS:
            batch_op.create_index(f'ix_accounts_{key}_trgm', [key], unique=False, postgresql_using='gin',
                                  postgresql_ops={key: 'public.gin_trgm_ops'})


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for key in KEYS:
            batch_op.drop_index(f'ix_accounts_{key}_trgm', postgresql_using='gin',
                                postgresql_ops={key: 'public.gin_trgm_ops'})
