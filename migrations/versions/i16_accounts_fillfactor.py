"""accounts at fillfactor 50 (issue 16, point 10): a billing run rewrites every row of a page of
`accounts` in one transaction; at 80 only about a third of those balance updates found room on
their page and were HOT, the others wrote all 16 indexes of the table.

Revision ID: i16_accounts_fillfactor
Revises: i19_cache_versions
Create Date: 2026-12-04

Additive: a storage parameter. It applies to pages written from now on; to rewrite the existing
ones under it, run `VACUUM FULL accounts` in a quiet hour (it locks the table while it copies:
about a second per 100,000 accounts). SQLite has no fillfactor: nothing to do there.
"""
from alembic import op

revision = "i16_accounts_fillfactor"
down_revision = "i19_cache_versions"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE accounts SET (fillfactor = 50)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE accounts SET (fillfactor = 80)")
