"""How a job runs: in a fresh context of its own (app context, session, tenant scope), with one
commit at the end. An RQ worker process has no app: the first job builds one (`create_app`),
as `wsgi.py` does for the web process.
"""
import contextvars
import functools

from flask import current_app, has_app_context

from app.extensions import db


def in_app_context(func):
    """Wrap a job function: it runs in a fresh context of its own (app context, session,
    tenant scope), commits once at the end and rolls back on error."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        app = current_app._get_current_object() if has_app_context() else _worker_app()
        return contextvars.Context().run(_run_in_app, app, func, args, kwargs)
    return wrapper


def _run_in_app(app, func, args, kwargs):
    with app.app_context():
        return _run_and_commit(func, args, kwargs)


def _run_and_commit(func, args, kwargs):
    try:
        result = func(*args, **kwargs)
        db.session.commit()
        return result
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


_app = None


def _worker_app():
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app
