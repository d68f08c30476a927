"""Upgrade a database built at one revision, with rows in it, to the next: the test every new
migration gets (operators' databases exist, with data)."""
import os
from contextlib import contextmanager

from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from app import create_app
from app.config import BASE_DIR
from app.extensions import db
from tests.conftest import PG_BASE, TestConfig, _worker_index


def down_revision_of(revision: str) -> str:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig(str(BASE_DIR / "migrations" / "alembic.ini"))
    cfg.set_main_option("script_location", str(BASE_DIR / "migrations"))
    return ScriptDirectory.from_config(cfg).get_revision(revision).down_revision


@contextmanager
def database_at(uri: str):
    """An app on `uri`; `step(revision)` upgrades it; `conn()` gives a connection."""
    class MigConfig(TestConfig):
        SQLALCHEMY_DATABASE_URI = uri
        SQLALCHEMY_ENGINE_OPTIONS = {}
    app = create_app(MigConfig)
    with app.app_context():
        try:
            yield lambda revision: upgrade(directory=str(BASE_DIR / "migrations"), revision=revision)
        finally:
            db.session.remove()
            db.engine.dispose()


@contextmanager
def postgresql_schema(name: str):
    schema = f"rl_mig_{name}_{_worker_index()}_{os.getpid()}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
