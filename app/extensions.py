"""Extension singletons, bound to the app in create_app()."""
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints so Alembic can alter them on every backend (SQLite batch mode too).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()


def ping_idle_connections(engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle `idle_seconds` or more.

    Instead of `pool_pre_ping` (a round trip on every checkout): a connection used a moment
    ago is alive; one that waited (a quiet night, a database restart) is pinged, and a dead
    one is replaced before the request sees it. A restart under steady load fails the
    statement of a connection that was busy through it; SQLAlchemy then drops the pool's
    connections from before the restart."""
    import time

    from sqlalchemy import event, exc

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy):
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as e:
            raise exc.DisconnectionError(f"idle connection is gone: {e}") from e
