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


def insert_at_revision(model, **values):
    """Insert one row of `model` into its table as it is at the database's current revision:
    only the columns that exist there (reflected), the model's scalar defaults for the rest.
    An ORM insert would name columns a later migration adds."""
    from sqlalchemy import MetaData, Table

    table = Table(model.__table__.name, MetaData(), autoload_with=db.session.connection())
    row = {}
    for column in table.columns:
        if column.name in values:
            row[column.name] = values[column.name]
            continue
        if column.computed is not None or column.primary_key:
            continue
        model_column = model.__table__.c.get(column.name)
        default = getattr(model_column, "default", None) if model_column is not None else None
        if default is not None and default.is_scalar:
            row[column.name] = default.arg
        elif default is not None and default.is_callable:
            row[column.name] = default.arg({})
    db.session.execute(table.insert().values(**row))
