"""Migrations: one head, and `flask db upgrade` builds exactly the models' schema."""
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from app import create_app
from app.config import BASE_DIR
from app.extensions import db
from tests.conftest import PG_BASE, TestConfig, _worker_index, require_service


def test_there_is_a_single_migration_head():
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(BASE_DIR / "migrations" / "alembic.ini"))
    cfg.set_main_option("script_location", str(BASE_DIR / "migrations"))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1


def _diff_after_upgrade(uri):
    class MigConfig(TestConfig):
        SQLALCHEMY_DATABASE_URI = uri
        SQLALCHEMY_ENGINE_OPTIONS = {}
    app = create_app(MigConfig)
    with app.app_context():
        upgrade(directory=str(BASE_DIR / "migrations"))
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        db.session.remove()
        db.engine.dispose()
    return diff


def test_upgrade_on_sqlite_matches_the_models(tmp_path):
    assert _diff_after_upgrade(f"sqlite:///{tmp_path / 'm.db'}") == []


def test_upgrade_on_postgresql_matches_the_models():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"rl_migrations_{_worker_index()}_{os.getpid()}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        assert _diff_after_upgrade(f"{PG_BASE}?options=-csearch_path%3D{schema}") == []
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
