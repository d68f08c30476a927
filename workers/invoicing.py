"""Invoicing jobs (app/invoicing/runs.py): the document runs for closed periods.

- `enqueue_invoice_runs` (cron, every 10 minutes, after the charge runs' tick): for every tenant
  with accounts, the closed period keys at that moment; one `document_period` job per tenant
  and key, job id `invoice-run-<tenant>-<key>`, `unique=True`. A job that failed, or whose run
  stopped beating (`INVOICE_RUN_STALE_SECONDS`), is deleted and queued again: the new run skips
  every account already marked done.
- `document_period(tenant, key)`: invoices and statements, one commit per batch of accounts.
Thin: open a scope, call the domain, commit.
"""
import logging
import time
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.invoicing.runs import run_job_id
from app.jobs import dispatch, queue, redis_connection, set_progress
from tenants.models import utcnow
from tenants.scope import tenant_scope, unscoped
from workers.runner import in_app_context

log = logging.getLogger(__name__)

RUN_TIMEOUT = 4 * 3600
STALE_SECONDS = 600


@in_app_context
def document_period(tenant_id: int, key: str, batch_size: int = 200, pause: float = 0.0,
                    now: str | None = None) -> dict:
    """The tenant's invoices (postpaid) and statements (prepaid) of the closed period `key`:
    batches committed one by one, first skipping accounts another worker holds, then a pass
    that waits for them."""
    from app.invoicing import runs

    moment = datetime.fromisoformat(now) if now else None
    with tenant_scope(tenant_id, descendants=False):
        plan = runs.start_run(tenant_id, key, moment)
        total = runs.remaining(plan)
        run = runs.run_of(tenant_id, key)
        if total == 0 and run.finished_at is not None:
            result = runs.summary(plan, finished=True, this_job=0)
            db.session.commit()
            return result
        runs.begin_pass(plan)
        db.session.commit()
        failed: set[int] = set()
        done = 0
        for skip_locked in (True, False):
            after = 0
            while True:
                batch = runs.document_batch(plan, after_id=after, batch_size=batch_size, skip_locked=skip_locked,
                                            exclude=failed, now=None)
                db.session.commit()                     # one commit per batch: frees the number series
                if not batch.ids:
                    break
                failed |= {a for a, (o, *_) in batch.outcomes.items() if o == "failed"}
                done += len(batch.outcomes)
                after = batch.last_id
                set_progress(done, total, period=key)
                if pause:
                    time.sleep(pause)
        finished = runs.finish_run(plan)
        result = runs.summary(plan, finished=finished, this_job=done)
        db.session.commit()
    if result["failed"]:
        log.warning("invoice run %s of tenant %s: %s account(s) failed", key, tenant_id, result["failed"])
    return result


def enqueue_run(tenant_id: int, key: str, **kwargs) -> str:
    """Queue the tenant's run for `key` under its deterministic id (unique); requeue it when the
    job with that id failed or its run went stale (its worker died)."""
    job_id = run_job_id(tenant_id, key)
    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        return dispatch(document_period, tenant_id, key, job_id=job_id, **kwargs)
    from rq.exceptions import DuplicateJobError, NoSuchJobError
    from rq.job import Job, JobStatus

    q = queue(app)
    for _ in range(2):
        try:
            return q.enqueue(document_period, args=(tenant_id, key), kwargs=kwargs, job_id=job_id, unique=True,
                             job_timeout=RUN_TIMEOUT).id
        except DuplicateJobError:
            try:
                job = Job.fetch(job_id, connection=redis_connection(app))
            except NoSuchJobError:
                continue
            status = job.get_status(refresh=True)
            dead = status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
            if status == JobStatus.STARTED and _run_is_stale(tenant_id, key, app):
                dead = True
            if not dead:
                return job_id
            log.warning("invoice run %s: job %s was %s; queued again", key, job_id, status)
            job.delete()
    return job_id


def _run_is_stale(tenant_id: int, key: str, app) -> bool:
    from app.invoicing.runs import run_of

    stale = float(app.config.get("INVOICE_RUN_STALE_SECONDS", STALE_SECONDS))
    with tenant_scope(tenant_id, descendants=False):
        run = run_of(tenant_id, key)
    return (run is not None and run.finished_at is None
            and run.heartbeat_at < utcnow() - timedelta(seconds=stale))


@in_app_context
def enqueue_invoice_runs(now: str | None = None) -> list[str]:
    """The cron entry: one document run per tenant and closed period key."""
    from app.accounts.models import Account
    from app.invoicing.runs import due_keys

    moment = datetime.fromisoformat(now) if now else datetime.now(timezone.utc)
    with unscoped():
        tenants = list(db.session.execute(select(Account.tenant_id).where(Account.status != "closed")
                                          .distinct().order_by(Account.tenant_id)).scalars())
    queued = []
    for tenant_id in tenants:
        try:
            with tenant_scope(tenant_id, descendants=False):
                keys = due_keys(tenant_id, moment)
            for key in keys:
                queued.append(enqueue_run(tenant_id, key, **({"now": now} if now else {})))
        except Exception:              # one tenant's trouble does not hold the others back
            log.exception("invoice runs of tenant %s not queued", tenant_id)
            db.session.rollback()
    db.session.commit()
    return queued
