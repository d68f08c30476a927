"""Application factory."""
import logging
from pathlib import Path

from flask import Flask, g, redirect, url_for
from flask_login import current_user

from app.config import BASE_DIR, Config
from app.extensions import csrf, db, htmx, login_manager, migrate


def create_app(config_class=Config) -> Flask:
    app = Flask(__name__, instance_path=str(BASE_DIR / "instance"))
    app.config.from_object(config_class)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        # SQLite allows one writer; wait for it instead of failing at once.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 15}}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    if not app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"):
        from app.extensions import ping_idle_connections

        with app.app_context():
            ping_idle_connections(db.engine, app.config.get("POOL_PING_IDLE_SECONDS", 10))
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from app import models  # noqa: F401  (every table on the metadata)
    _register_tenancy(app)
    _register_blueprints(app)
    _register_template_helpers(app)

    from app.errors import register_error_handlers
    register_error_handlers(app)

    from app.cli import register_cli
    register_cli(app)
    return app


def _register_tenancy(app):
    from sqlalchemy import select

    from app.logins.models import User
    from tenants.scope import activate, deactivate, scope_for_user

    @login_manager.user_loader
    def load_user(user_id):
        try:
            uid = int(user_id)
        except ValueError:
            return None
        return db.session.execute(
            select(User).where(User.id == uid).execution_options(all_tenants=True)
        ).scalar_one_or_none()

    @app.before_request
    def open_tenant_scope():
        g.scope_token = activate(scope_for_user(current_user, db.session))

    @app.teardown_request
    def close_tenant_scope(exc):
        token = g.pop("scope_token", None)
        if token is not None:
            deactivate(token)

    @app.after_request
    def vary_on_htmx(resp):
        resp.vary.add("HX-Request")
        return resp


def _register_blueprints(app):
    from portals import register_portals

    register_portals(app)

    @app.get("/")
    def index():
        if current_user.is_authenticated:
            return redirect(url_for(f"{current_user.portal}.dashboard"))
        return redirect(url_for("customer.login"))

    @app.get("/favicon.ico")
    def favicon():
        """Browsers ask for /favicon.ico whatever the page says: give them the icon."""
        from flask import send_from_directory

        return send_from_directory(app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


def _register_template_helpers(app):
    from app.calls.in_use import register_template_globals
    from app.money import format_money, format_money_exact
    from app.timezones import to_local

    register_template_globals(app)  # live calls in use, from the AMI watchers' Redis counts

    @app.template_filter("money")
    def money_filter(amount, currency="USD"):
        return "" if amount is None else format_money(amount, currency)

    # A stored (naive UTC) time as the wall clock of a zone: {{ e.created_at|local(account.timezone) }}
    app.add_template_filter(to_local, "local")

    @app.template_filter("money_exact")
    def money_exact_filter(amount, currency="USD"):
        """Every decimal the amount has: ledger amounts and balances keep sub-cent call charges."""
        return "" if amount is None else format_money_exact(amount, currency)

    @app.context_processor
    def portal_context():
        from flask import session
        return {"impersonating": bool(session.get("impersonator_id"))}
