"""Migration i14_safeguards on a database with resellers: each keeps its row and gets the
default adjustment limit of 1000, which it can then change."""
from decimal import Decimal

from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

TENANT = ("INSERT INTO tenants (id, parent_id, path, name, slug, status, email, currency, base_extension, created_at) "
          "VALUES (:id, :parent, :path, :name, :slug, 'active', '', :currency, 1000, '2026-11-01 00:00:00')")


def upgrade_with_resellers(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("i14_safeguards"))
        db.session.execute(text(TENANT), {"id": 1, "parent": None, "path": "/1/", "name": "Platform", "slug": "p",
                                          "currency": "USD"})
        db.session.execute(text(TENANT), {"id": 2, "parent": 1, "path": "/1/2/", "name": "Euro Tel", "slug": "euro",
                                          "currency": "EUR"})
        db.session.commit()
        step("i14_safeguards")
        rows = db.session.execute(text("SELECT id, name, currency, adjustment_confirm_limit FROM tenants ORDER BY id")
                                  ).all()
        db.session.execute(text("UPDATE tenants SET adjustment_confirm_limit = 250.5 WHERE id = 2"))
        changed = db.session.execute(text("SELECT adjustment_confirm_limit FROM tenants WHERE id = 2")).scalar_one()
        db.session.rollback()
        return [(i, n, c, Decimal(str(limit))) for i, n, c, limit in rows], Decimal(str(changed))


def _check(rows, changed):
    assert rows == [(1, "Platform", "USD", Decimal("1000")), (2, "Euro Tel", "EUR", Decimal("1000"))]
    assert changed == Decimal("250.5")


def test_i14_gives_every_reseller_the_default_limit_on_sqlite(tmp_path):
    _check(*upgrade_with_resellers(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i14_gives_every_reseller_the_default_limit_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i14s") as uri:
        _check(*upgrade_with_resellers(uri))
