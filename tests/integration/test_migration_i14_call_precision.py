"""Migration i14_call_precision on a database with resellers: they keep the cent (2 places),
a reseller created afterwards gets 4, and the database refuses a precision outside 2..4."""
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

TENANT = ("INSERT INTO tenants (id, parent_id, path, name, slug, status, email, currency, base_extension, created_at) "
          "VALUES (:id, :parent, :path, :name, :slug, 'active', '', :currency, 1000, '2026-11-01 00:00:00')")


def upgrade_with_resellers(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("i14_call_precision"))
        db.session.execute(text(TENANT), {"id": 1, "parent": None, "path": "/1/", "name": "Platform", "slug": "p",
                                          "currency": "USD"})
        db.session.execute(text(TENANT), {"id": 2, "parent": 1, "path": "/1/2/", "name": "Harbour", "slug": "h",
                                          "currency": "KWD"})
        db.session.commit()
        step("i14_call_precision")
        existing = db.session.execute(text("SELECT id, name, currency, call_charge_places FROM tenants ORDER BY id")).all()
        db.session.execute(text(TENANT), {"id": 3, "parent": 1, "path": "/1/3/", "name": "New", "slug": "n",
                                          "currency": "EUR"})
        new = db.session.execute(text("SELECT call_charge_places FROM tenants WHERE id = 3")).scalar_one()
        db.session.commit()
        refused = []
        for places in (1, 5):
            try:
                db.session.execute(text("UPDATE tenants SET call_charge_places = :p WHERE id = 3"), {"p": places})
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                refused.append(places)
        db.session.execute(text("UPDATE tenants SET call_charge_places = 3 WHERE id = 3"))
        db.session.commit()
        changed = db.session.execute(text("SELECT call_charge_places FROM tenants WHERE id = 3")).scalar_one()
        return [tuple(r) for r in existing], new, refused, changed


def _check(existing, new, refused, changed):
    assert existing == [(1, "Platform", "USD", 2), (2, "Harbour", "KWD", 2)]
    assert new == 4
    assert refused == [1, 5]
    assert changed == 3


def test_i14_keeps_existing_resellers_at_the_cent_on_sqlite(tmp_path):
    _check(*upgrade_with_resellers(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i14_keeps_existing_resellers_at_the_cent_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i14p") as uri:
        _check(*upgrade_with_resellers(uri))
