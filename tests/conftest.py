"""Test fixtures: the app on the machine's PostgreSQL and Redis, and factories.

Each test process gets its own PostgreSQL schema (and Redis database), so xdist workers and
parallel runs never touch each other's rows. Under CI (CI=true) an unreachable PostgreSQL
or Redis fails the run instead of skipping.
"""
import contextvars
import os
import socket
from decimal import Decimal

import pytest
from sqlalchemy import text

from flask.testing import FlaskClient

from app import create_app
from app.config import Config
from app.extensions import db
from tenants.scope import unscoped

PG_BASE = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "correct-horse-battery"


def _worker_index() -> int:
    wid = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(wid[2:]) if wid.startswith("gw") else 0


def _schema() -> str:
    # Per process: parallel runs on one machine (xdist workers, a second checkout) never meet.
    return os.environ.get("RL_TEST_SCHEMA") or f"rl_test_{os.getpid()}"


def _redis_db() -> int:
    # RL_TEST_REDIS_BASE moves a whole run (e.g. a second checkout) to other databases.
    base = int(os.environ.get("RL_TEST_REDIS_BASE", "1"))
    return int(os.environ.get("RL_TEST_REDIS_DB", base + _worker_index()))


def _reachable(host, port) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def require_service(name, host, port):
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def ensure_pg_trgm(engine) -> None:
    """pg_trgm in the public schema, once per database (as migration 0004 installs it); two
    test processes starting together take turns (an advisory lock)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(4242)"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    WTF_CSRF_ENABLED = False
    SQLALCHEMY_DATABASE_URI = f"{PG_BASE}?options=-csearch_path%3D{_schema()}"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 20, "max_overflow": 20}
    REDIS_URL = f"{REDIS_BASE}/{_redis_db()}"
    JOBS_SYNCHRONOUS = True
    LOGIN_LOCK_SECONDS = 60
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast in tests; production keeps scrypt


class RequestIsolatedClient(FlaskClient):
    """Each request runs in a fresh context, as in production: its own app context, `g`,
    database session and tenant scope, not the ones the test itself holds."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(scope="session")
def _app():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    app = create_app(TestConfig)
    app.test_client_class = RequestIsolatedClient
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {_schema()} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {_schema()}"))
        ensure_pg_trgm(db.engine)
        db.create_all()
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        if not os.environ.get("RL_TEST_SCHEMA"):
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {_schema()} CASCADE"))
        db.engine.dispose()


def _truncate_all():
    names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app(_app):
    """The app with an empty database; a pushed app context; cleaned afterwards."""
    ctx = _app.app_context()
    ctx.push()
    try:
        yield _app
    finally:
        db.session.rollback()
        db.session.remove()
        _truncate_all()
        conn = _app.extensions.get("ringledger_redis")
        if conn is not None:
            conn.flushdb()
        ctx.pop()


@pytest.fixture(autouse=True)
def _fresh_rating_cache():
    """Ids restart at 1 in every test: a cached prefix index must not outlive its test."""
    from app.rating.index import clear_index_cache

    clear_index_cache()
    yield
    clear_index_cache()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def new_client(app):
    """Factory for extra clients (one per login in a test)."""
    return app.test_client


# --- factories: each returns a callable that creates committed rows -----------------------

@pytest.fixture
def platform(app):
    from app.cli.demo import ensure_platform

    with unscoped():
        root = ensure_platform()
        db.session.commit()
        return root


@pytest.fixture
def make_tenant(app, platform):
    from app.resellers.operations import create_tenant

    counter = iter(range(1, 10_000))

    def make(name=None, parent=None, **kw):
        n = next(counter)
        with unscoped():
            tenant = create_tenant(name=name or f"Reseller {n}", slug=kw.pop("slug", None) or f"reseller-{n}",
                                   parent_id=(parent or platform).id, email=f"r{n}@reseller.example", **kw)
            db.session.commit()
            return tenant
    return make


@pytest.fixture
def make_account(app):
    from app.accounts.operations import create_account

    counter = iter(range(1, 10_000))

    def make(tenant, *, credit="0", **kw):
        n = next(counter)
        with unscoped():
            account = create_account(tenant_id=tenant.id, name=kw.pop("name", f"Account {n}"),
                                     email=kw.pop("email", f"a{n}@customer.example"),
                                     initial_credit=Decimal(credit), **kw)
            db.session.commit()
            return account
    return make


@pytest.fixture
def make_login(app):
    from app.logins.operations import create_login

    counter = iter(range(1, 10_000))

    def make(tenant, role="reseller_owner", account=None, email=None, password=PASSWORD):
        n = next(counter)
        with unscoped():
            user = create_login(tenant_id=tenant.id, email=email or f"{role.replace('_', '-')}{n}@login.example",
                                name=f"{role} {n}", role=role, password=password,
                                account_id=account.id if account else None)
            db.session.commit()
            return user
    return make


@pytest.fixture
def login(app):
    """Log a test client in as a user without going through the form (the form has its own tests)."""
    def do(client, user):
        with client.session_transaction() as s:
            s.clear()
            s["_user_id"] = str(user.id)
            s["_fresh"] = True
        return client
    return do


@pytest.fixture
def world(platform, make_tenant, make_account, make_login):
    """Two resellers (A with a sub-reseller), accounts and logins for every role.

    Used by isolation tests: everything named *_b belongs to reseller B, which no login of
    A may see.
    """
    class World:
        pass

    w = World()
    w.platform = platform
    w.a = make_tenant("Reseller A")
    w.a_sub = make_tenant("Reseller A North", parent=w.a)
    w.b = make_tenant("Reseller B")
    w.account_a = make_account(w.a, credit="10")
    w.account_a2 = make_account(w.a, credit="5")
    w.account_a_sub = make_account(w.a_sub, credit="7")
    w.account_b = make_account(w.b, credit="20")
    w.admin = make_login(platform, "platform_admin")
    w.owner_a = make_login(w.a, "reseller_owner")
    w.staff_a = make_login(w.a, "reseller_staff")
    w.owner_a_sub = make_login(w.a_sub, "reseller_owner")
    w.owner_b = make_login(w.b, "reseller_owner")
    w.customer_a = make_login(w.a, "account_admin", account=w.account_a)
    w.customer_a2 = make_login(w.a, "account_admin", account=w.account_a2)
    w.customer_b = make_login(w.b, "account_admin", account=w.account_b)
    return w


# --- a fake Stripe (localstripe + Checkout Sessions, tests/fake_stripe.py) -----------------

STRIPE_TEST_KEY = "sk_test_platform_fake"
STRIPE_TEST_WEBHOOK_SECRET = "whsec_platform_fake"


@pytest.fixture(scope="session")
def _fake_stripe_server():
    from tests.fake_stripe import FakeStripe

    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def fake_stripe(app, _fake_stripe_server):
    """The app pointed at a fresh fake Stripe (platform keys set); never the real one."""
    saved = {k: app.config.get(k) for k in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")}
    _fake_stripe_server.reset()
    app.config.update(STRIPE_SECRET_KEY=STRIPE_TEST_KEY, STRIPE_API_BASE=_fake_stripe_server.api_base,
                      STRIPE_WEBHOOK_SECRET=STRIPE_TEST_WEBHOOK_SECRET)
    yield _fake_stripe_server
    _fake_stripe_server.reset()
    app.config.update(saved)
