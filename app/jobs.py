"""Background jobs: RQ on Redis in production, a thread in-process for the embedded default.

`enqueue()` queues a job for after the current transaction commits (so the worker sees
what the request wrote, and a rolled-back request queues nothing). Jobs are module-level
functions that take ids; `job_id` makes a second enqueue a no-op (RQ `unique=True`), while
the job's own database keys stop a second effect.
"""
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.utils import import_string

from app.extensions import db

log = logging.getLogger(__name__)

_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ringledger-job")
_local_jobs: dict[str, dict] = {}   # in-process job id -> {"status", "meta"}
_local_lock = threading.Lock()
_current_local = threading.local()


def enqueue(func, *args, job_id: str | None = None, queue_name: str | None = None, **kwargs):
    """Run `func(*args, **kwargs)` in the background once the current transaction commits.

    `func` is a job function or its dotted name ("workers.rating.import_rate_deck"): app/
    names the jobs of workers/ by name and never imports them (docs/architecture.md).
    `queue_name`: another RQ queue than RQ_QUEUE (the worker lists its queues in priority order)."""
    db.session.info.setdefault("pending_jobs", []).append((func, args, kwargs, job_id, queue_name))
    return job_id


WAKE_KEY = "ringledger:wake:{}"
WAKE_EXPIRES = 300   # seconds: a woken run that never started stops blocking the next wake


def wake(func: str, name: str) -> None:
    """After the commit, queue `func` (no arguments) unless a run woken under `name` is queued
    and not started yet: for jobs that drain work recorded in the database (receipts to queue).

    Costs one Redis SET NX while a run waits, instead of an RQ enqueue per piece of work (the
    Stripe webhook wakes the receipts job for every payment, bench/webhooks.py). The job calls
    `woken(name)` before it reads its work: whatever committed before that is seen by it, and
    whatever commits after wakes a new run. No lost wake-up, at most one waiting run. If Redis
    fails here the work stays in the database for the job's cron entry to find."""
    db.session.info.setdefault("wake_jobs", {})[name] = func


def woken(name: str) -> None:
    """Called by a woken job first thing: from now on a wake queues a new run."""
    conn = redis_connection()
    if conn is not None:
        conn.delete(WAKE_KEY.format(name))


def _wake_now(name: str, func: str) -> None:
    conn = redis_connection()
    if conn is None:
        dispatch(func)            # embedded: an in-process thread, every time (cheap there)
        return
    try:
        if conn.set(WAKE_KEY.format(name), 1, nx=True, ex=WAKE_EXPIRES):
            queue().enqueue(func)
    except Exception as e:       # never fail a committed request: the cron entry catches up
        log.warning("job %s not woken: %s", name, e)


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session):
    pending = session.info.pop("pending_jobs", None) or ()
    if len(pending) > 1 and current_app.config.get("REDIS_URL"):
        # Many at once (a billing run's letters): a few round trips to Redis for all of them.
        def batchable(p):
            return p[3] and not p[2] and p[4] is None     # an id, no options, the default queue
        many = [p for p in pending if batchable(p)]
        if len(many) > 1:
            _enqueue_many(current_app._get_current_object(), many)
            pending = [p for p in pending if not batchable(p)]
    for func, args, kwargs, job_id, queue_name in pending:
        dispatch(func, *args, job_id=job_id, queue_name=queue_name, **kwargs)

    for name, func in (session.info.pop("wake_jobs", None) or {}).items():
        _wake_now(name, func)


def _enqueue_many(app, pending) -> None:
    """Queue jobs that have ids (and no options) in one transaction, unique as `dispatch`
    makes them: the ids already in Redis are left out, and WATCH on their keys makes a job
    queued meanwhile under one of the ids restart the lot (as RQ's own unique enqueue would
    refuse it)."""
    from redis.exceptions import WatchError
    from rq.job import Job

    q = queue(app)
    conn = redis_connection(app)
    first = {}
    for p in pending:
        first.setdefault(p[3], p)                  # the same id twice in one commit: queued once
    pending = list(first.values())
    keys = [Job.key_for(p[3]) for p in pending]
    for _ in range(10):
        with conn.pipeline() as pipe:
            try:
                pipe.watch(*keys)
                check = conn.pipeline(transaction=False)
                for key in keys:
                    check.exists(key)
                taken = check.execute()
                datas = [q.prepare_data(func, args=args, job_id=job_id)
                         for (func, args, _, job_id, _), there in zip(pending, taken) if not there]
                pipe.multi()
                if datas:
                    q.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
                skipped = len(pending) - len(datas)
                if skipped:
                    log.info("%s job(s) already queued", skipped)
                return
            except WatchError:
                continue
    raise RuntimeError("jobs not queued: their ids kept changing in Redis")



@event.listens_for(Session, "after_rollback")
def _drop_on_rollback(session):
    session.info.pop("pending_jobs", None)
    session.info.pop("wake_jobs", None)


def redis_connection(app=None):
    from redis import Redis

    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    conn = app.extensions.get("ringledger_redis")
    if conn is None:
        conn = app.extensions["ringledger_redis"] = Redis.from_url(url)
    return conn


def queue(app=None, name: str | None = None):
    from rq import Queue

    app = app or current_app
    return Queue(name or app.config["RQ_QUEUE"], connection=redis_connection(app))


def dispatch(func, *args, job_id: str | None = None, queue_name: str | None = None, **kwargs):
    """Hand a job over now: to RQ if configured, else to an in-process thread."""
    app = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        from rq.exceptions import DuplicateJobError

        try:
            job = queue(app, queue_name).enqueue(func, *args, job_id=job_id, unique=bool(job_id), **kwargs)
            return job.id
        except DuplicateJobError:
            log.info("job %s already queued", job_id)
            return job_id
    job_id = job_id or uuid.uuid4().hex
    with _local_lock:
        if job_id in _local_jobs and _local_jobs[job_id]["status"] in ("queued", "started"):
            return job_id
        _local_jobs[job_id] = {"status": "queued", "meta": {}}
    if app.config.get("JOBS_SYNCHRONOUS"):
        _run_local(app, job_id, func, args, kwargs)
    else:
        _executor.submit(_run_local, app, job_id, func, args, kwargs)
    return job_id


def _run_local(app, job_id, func, args, kwargs):
    if isinstance(func, str):
        func = import_string(func)   # as RQ does with a job named by its dotted path
    _local_jobs[job_id]["status"] = "started"
    _current_local.job_id = job_id
    try:
        with app.app_context():
            func(*args, **kwargs)
        _local_jobs[job_id]["status"] = "finished"
    except Exception:
        log.exception("in-process job %s failed", job_id)
        _local_jobs[job_id]["status"] = "failed"
    finally:
        _current_local.job_id = None


def set_progress(done: int, total: int, **extra) -> None:
    """Called from inside a job: the polling progress bar reads this."""
    meta = {"done": done, "total": total, **extra}
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.meta.update(meta)
        job.save_meta()
        return
    job_id = getattr(_current_local, "job_id", None)
    if job_id:
        _local_jobs[job_id]["meta"].update(meta)


def job_status(job_id: str) -> dict | None:
    """{"status": queued|started|finished|failed, "meta": {...}} or None if unknown."""
    if current_app.config.get("REDIS_URL"):
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(job_id, connection=redis_connection())
        except NoSuchJobError:
            return None
        return {"status": job.get_status(refresh=False).value, "meta": dict(job.meta)}
    info = _local_jobs.get(job_id)
    return None if info is None else {"status": info["status"], "meta": dict(info["meta"])}
