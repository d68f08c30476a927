"""One config class read from the environment; tests subclass it."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _bool(name, default=False):
    v = os.environ.get(name)
    return default if v is None else v.lower() in ("1", "true", "yes", "on")


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-change-me")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'ringledger.db'}"
    )
    # No ping on every checkout (it cost a round trip per request, three with psycopg's
    # BEGIN/ROLLBACK): app/extensions.py pings a pooled connection only when it sat idle.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
    POOL_PING_IDLE_SECONDS = float(os.environ.get("POOL_PING_IDLE_SECONDS", 10))
    # How often the accounts list and the account page refresh their live-call counts.
    IN_USE_POLL_SECONDS = int(os.environ.get("IN_USE_POLL_SECONDS", "5"))
    # Unset: jobs run in-process (embedded first run). Set: RQ on that Redis.
    REDIS_URL = os.environ.get("REDIS_URL") or None
    RQ_QUEUE = os.environ.get("RQ_QUEUE", "default")
    # Document emails (each renders a PDF): a queue of their own, after RQ_QUEUE in the worker's list.
    RQ_DOCUMENTS_QUEUE = os.environ.get("RQ_DOCUMENTS_QUEUE", "documents")
    # The FastAGI call-control process (`flask agi serve`, docs/asterisk.md).
    AGI_HOST = os.environ.get("AGI_HOST", "0.0.0.0")
    AGI_PORT = int(os.environ.get("AGI_PORT", 4573))
    # Worker processes sharing the port (each one uses one core; docs/routing.md), and the loop.
    AGI_PROCESSES = int(os.environ.get("AGI_PROCESSES", 1))
    AGI_UVLOOP = _bool("AGI_UVLOOP", True)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PERMANENT_SESSION_LIFETIME = 60 * 60 * 12
    WTF_CSRF_TIME_LIMIT = None  # tied to the session instead of a clock

    # Login throttling: after this many failures a login is locked for LOCK_SECONDS,
    # doubling on each further lock.
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", 5))
    LOGIN_LOCK_SECONDS = int(os.environ.get("LOGIN_LOCK_SECONDS", 60))

    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")

    MAIL_FROM = os.environ.get("MAIL_FROM", "billing@ringledger.example")
    # Unset SMTP_HOST: emails are written to the log and marked "logged" (app/notifications).
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", 587))
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = _bool("SMTP_STARTTLS", True)
    DEFAULT_CURRENCY = os.environ.get("DEFAULT_CURRENCY", "USD")
