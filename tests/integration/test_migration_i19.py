"""Revision i19_call_control on a database built at its down_revision: rows survive, rules work."""
import importlib.util

import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app import create_app
from app.config import BASE_DIR
from app.extensions import db
from tests.conftest import TestConfig

SCRIPT = BASE_DIR / "migrations" / "versions" / "i19_call_control.py"


def _down_revision():
    spec = importlib.util.spec_from_file_location("i19", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.revision, module.down_revision


def test_upgrade_keeps_rows_and_adds_number_rules(tmp_path):
    revision, down = _down_revision()

    class MigConfig(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'i19.db'}"
        SQLALCHEMY_ENGINE_OPTIONS = {}
    app = create_app(MigConfig)
    with app.app_context():
        upgrade(directory=str(BASE_DIR / "migrations"), revision=down)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO tenants (id, path, name, slug, status, email, currency, base_extension, created_at)"
                " VALUES (1, '/1/', 'Platform', 'platform', 'active', 'p@x.example', 'USD', 1000, '2026-12-01')"))
        upgrade(directory=str(BASE_DIR / "migrations"), revision=revision)
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM tenants WHERE id = 1")).scalar() == "Platform"
            assert conn.execute(text("SELECT count(*) FROM number_rules")).scalar() == 0
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("INSERT INTO number_rules (kind, prefix, tenant_id, account_id)"
                              " VALUES ('maybe', '44', 1, 1)"))
        db.session.remove()
        db.engine.dispose()
