"""Migration 0004 on a database holding accounts: the trigram indexes are built over them and a
contains-search finds them (PostgreSQL uses the index)."""
from sqlalchemy import select, text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_accounts(uri):
    with database_at(uri) as step:
        from app.accounts.listing import search_clause
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.models import Tenant
        from tenants.scope import unscoped

        step(down_revision_of("0004"))
        with unscoped():
            insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
            for n, name in enumerate(("Harbour Cafe", "Nord Law", "Quay Dental")):
                insert_at_revision(Account, tenant_id=1, account_number=f"100000000{n}", name=name,
                                   email=f"a{n}@x.example")
            db.session.commit()
        step("0004")
        with unscoped():
            found = db.session.execute(select(Account.name).where(search_clause("cafe"))).scalars().all()
        indexes = []
        if db.engine.dialect.name == "postgresql":
            indexes = db.session.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'accounts' AND schemaname = current_schema() "
                                              "AND indexdef LIKE '%gin_trgm_ops%' ORDER BY 1")).scalars().all()
        db.session.rollback()
        return found, indexes


def test_0004_on_sqlite(tmp_path):
    found, _ = upgrade_with_accounts(f"sqlite:///{tmp_path / 'm.db'}")
    assert found == ["Harbour Cafe"]


def test_0004_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("0004") as uri:
        found, indexes = upgrade_with_accounts(uri)
    assert found == ["Harbour Cafe"]
    assert indexes == ["ix_accounts_company_key_trgm", "ix_accounts_email_key_trgm", "ix_accounts_name_key_trgm"]
