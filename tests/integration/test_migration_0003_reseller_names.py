"""Migration 0003 on a database where two sibling resellers share a name: the newer one is
renamed with its short name, and the database refuses a new duplicate."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

TENANT = ("INSERT INTO tenants (id, parent_id, path, name, slug, status, email, currency, base_extension, created_at) "
          "VALUES (:id, :parent, :path, :name, :slug, 'active', '', 'USD', 1000, '2026-11-01 00:00:00')")


def upgrade_with_twins(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("0003"))
        for id_, parent, name, slug in ((1, None, "Platform", "platform"), (2, 1, "Acme", "acme"),
                                        (3, 1, "ACME", "acme-2"), (4, 2, "Acme", "acme-north")):
            db.session.execute(text(TENANT), {"id": id_, "parent": parent, "path": f"/{id_}/", "name": name,
                                              "slug": slug})
        db.session.commit()
        step("0003")
        names = dict(db.session.execute(text("SELECT id, name FROM tenants")).all())
        with pytest.raises(IntegrityError):
            db.session.execute(text(TENANT), {"id": 5, "parent": 1, "path": "/5/", "name": "Acme", "slug": "acme-3"})
            db.session.flush()
        db.session.rollback()
        return names


def test_0003_renames_sibling_twins_on_sqlite(tmp_path):
    names = upgrade_with_twins(f"sqlite:///{tmp_path / 'm.db'}")
    assert names == {1: "Platform", 2: "Acme", 3: "ACME (acme-2)", 4: "Acme"}   # 4 has another parent


def test_0003_renames_sibling_twins_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("0003") as uri:
        names = upgrade_with_twins(uri)
    assert names == {1: "Platform", 2: "Acme", 3: "ACME (acme-2)", 4: "Acme"}
