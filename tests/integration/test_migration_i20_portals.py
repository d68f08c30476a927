"""Migration i20_portals on a database with logins: they survive, and can hold permissions."""
from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

TENANT = ("INSERT INTO tenants (id, parent_id, path, name, slug, status, email, currency, base_extension, created_at) "
          "VALUES (:id, :parent, :path, :name, :slug, 'active', '', 'USD', 1000, '2026-11-01 00:00:00')")
LOGIN = ("INSERT INTO users (id, tenant_id, email, name, role, password_hash, active, failed_logins, created_at) "
         "VALUES (:id, :tenant, :email, 'x', :role, 'h', :active, 0, '2026-11-01 00:00:00')")


def upgrade_with_logins(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("i20_portals"))
        db.session.execute(text(TENANT), {"id": 1, "parent": None, "path": "/1/", "name": "Platform", "slug": "p"})
        db.session.execute(text(LOGIN), {"id": 1, "tenant": 1, "email": "a@x.example", "role": "platform_admin",
                                         "active": True})
        db.session.execute(text(LOGIN), {"id": 2, "tenant": 1, "email": "b@x.example", "role": "reseller_staff",
                                         "active": False})
        db.session.commit()
        step("i20_portals")
        rows = db.session.execute(text("SELECT id, email, role, active, permissions FROM users ORDER BY id")).all()
        db.session.execute(text("UPDATE users SET permissions = :p WHERE id = 2"), {"p": '["reports"]'})
        stored = db.session.execute(text("SELECT permissions FROM users WHERE id = 2")).scalar_one()
        db.session.rollback()
        return [tuple(r) for r in rows], stored


def _check(rows, stored):
    assert rows == [(1, "a@x.example", "platform_admin", True, None), (2, "b@x.example", "reseller_staff", False, None)]
    assert stored in (["reports"], '["reports"]')


def test_i20_keeps_logins_on_sqlite(tmp_path):
    _check(*upgrade_with_logins(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i20_keeps_logins_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i20") as uri:
        _check(*upgrade_with_logins(uri))
