"""Migration i19_cache_versions on a database with an account, an extension and a carrier: the
table arrives empty (every version 0) and, on PostgreSQL, the triggers bump versions from then on."""
from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_an_extension(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.extensions import db
        from app.routing.models import Carrier
        from provisioning.models import Extension
        from tenants.models import Tenant

        step(down_revision_of("i19_cache_versions"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Account, id=7, tenant_id=1, account_number="4821000007", name="Harbour", email="h@x.example")
        insert_at_revision(Extension, id=3, tenant_id=1, account_id=7, number="201", sip_username="acme-201",
                           sip_secret="s3cret-s3cret")
        insert_at_revision(Carrier, id=2, tenant_id=1, name="alpha", host="alpha.example")
        db.session.commit()
        step("i19_cache_versions")
        at_upgrade = db.session.execute(text("SELECT count(*) FROM cache_versions")).scalar()
        db.session.execute(text("UPDATE extensions SET registered = true WHERE id = 3"))       # not read by the cache
        db.session.execute(text("UPDATE extensions SET active = false WHERE id = 3"))
        db.session.execute(text("UPDATE carriers SET add_prefix = '00' WHERE id = 2"))
        db.session.commit()
        after = dict(db.session.execute(text("SELECT scope || ':' || key, version FROM cache_versions")).all())
        return at_upgrade, after


def test_i19_cache_versions_on_sqlite(tmp_path):
    at_upgrade, after = upgrade_with_an_extension(f"sqlite:///{tmp_path / 'm.db'}")
    assert at_upgrade == 0 and after == {}           # no triggers: the first run's reference path needs none


def test_i19_cache_versions_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i19v") as uri:
        at_upgrade, after = upgrade_with_an_extension(uri)
    assert at_upgrade == 0
    assert after == {"account:7": 1, "routing:0": 1}
