"""The pool pings a connection only when it sat idle (app/extensions.py ping_idle_connections),
instead of pool_pre_ping's round trip on every checkout."""
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from app.extensions import ping_idle_connections
from tests.conftest import PG_BASE, require_service


def _kill(engine, pid):
    with engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced_a_busy_one_is_not_pinged():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    engine = create_engine(PG_BASE, pool_size=1, max_overflow=1)
    killer = create_engine(PG_BASE)
    ping_idle_connections(engine, 0.2)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        _kill(killer, first)
        time.sleep(0.3)                       # idle long enough: pinged, found dead, replaced
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second != first

        _kill(killer, second)                 # used a moment ago: no ping, so the dead
        with pytest.raises(OperationalError):  # connection fails its statement...
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        with engine.connect() as conn:        # ...and the pool drops it: the next one works
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        killer.dispose()


def test_the_app_pings_idle_connections_instead_of_every_checkout():
    from app import create_app
    from app.config import Config
    from app.extensions import db
    from tests.conftest import TestConfig

    class Production(TestConfig):
        SQLALCHEMY_ENGINE_OPTIONS = Config.SQLALCHEMY_ENGINE_OPTIONS

    app = create_app(Production)
    with app.app_context():
        assert db.engine.pool._pre_ping is False
        assert [fn.__name__ for fn in db.engine.pool.dispatch.checkout] == ["_ping_if_idle"]
        db.engine.dispose()
