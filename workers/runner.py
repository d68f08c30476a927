"""How a job runs: in a fresh context of its own (app context, session, tenant scope), with one
commit at the end. An RQ worker process has no app: the first job builds one (`create_app`),
as `wsgi.py` does for the web process.

`Worker` (the Procfile's `rq worker --worker-class workers.runner.Worker`) builds it once, before
it forks: RQ runs every job in a new work horse forked from the worker, so with the plain worker
each job imported the whole app and built it again (1-2 s a job, longer than most jobs take).
"""
import contextvars
import functools
import os

from rq import SimpleWorker as _RQSimpleWorker
from rq import Worker as _RQWorker

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
_app_pid = None


def _worker_app():
    global _app, _app_pid
    if _app is None:
        from app import create_app

        _app, _app_pid = create_app(), os.getpid()
    elif _app_pid != os.getpid():
        # A work horse forked from a worker that built the app: the parent's pooled connections
        # (none, normally: the worker does not query) are not this process's to use.
        with _app.app_context():
            from app.extensions import db

            db.engine.dispose(close=False)
        _app.extensions.pop("ringledger_redis", None)
        _app_pid = os.getpid()
    return _app


class PromptShutdown:
    """An RQ worker that stops within a second. RQ (2.12) listens for commands on its channel
    in redis-py's PubSubWorkerThread with a sleep time of 60 s, and redis-py 8's `stop()` waits
    for that thread: once the channel is unsubscribed, the thread waits up to its sleep time for
    a subscription, so a warm shutdown (a deploy, a test's burst worker) could hang a minute.
    The same subscription, with a short sleep time (an idle wake-up twice a second)."""
    PUBSUB_SLEEP = 0.5

    def subscribe(self):
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=self.PUBSUB_SLEEP, daemon=True, exception_handler=self._pubsub_exception_handler)


class SimpleWorker(PromptShutdown, _RQSimpleWorker):
    """RQ's SimpleWorker (jobs in this process: tests, a burst run by hand), stopping promptly."""


class Worker(PromptShutdown, _RQWorker):
    """An RQ worker that builds the app before forking its work horses, which inherit it.
    What the app made is then frozen out of the cyclic collector (`gc.freeze`): a horse's
    collections no longer rescan the whole imported app, nor write to its shared pages."""

    def __init__(self, *args, **kwargs):
        import gc

        super().__init__(*args, **kwargs)
        _worker_app()
        gc.collect()
        gc.freeze()
