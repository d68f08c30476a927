"""Queueing a period run: what the charge runs (workers/billing.py) and the document runs
(workers/invoicing.py) do alike.

One job per tenant and period key under a deterministic id, `unique=True`: a doubled cron tick
queues one job, and the database keys stop a second effect anyway. A job with that id that
failed, or whose run stopped beating (a killed worker: no batch committed for the app's
`stale_setting` seconds, default STALE_SECONDS), is deleted and queued again: the new run skips
every account already marked done.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from flask import current_app
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.jobs import dispatch, queue, redis_connection
from tenants.models import utcnow
from tenants.scope import tenant_scope, unscoped

RUN_TIMEOUT = 4 * 3600          # seconds: a run of a big tenant outlives RQ's 180 s default
STALE_SECONDS = 600             # a run without a committed batch for this long is taken as dead


@dataclass(frozen=True)
class PeriodRuns:
    """One kind of period run, as the queue sees it."""
    name: str                                       # "charge run": for the log
    job: Callable                                   # job(tenant_id, key, **kwargs): the run itself
    job_id: Callable[[int, str], str]               # its deterministic job id
    run_of: Callable[[int, str], object]            # its row (finished_at, heartbeat_at), or None
    due_keys: Callable[[int, datetime], list[str]]  # the period keys a tenant has a run for now
    stale_setting: str                              # config key: seconds without a beat, then dead
    log: logging.Logger                             # the caller's, so its lines keep their logger

    def enqueue(self, tenant_id: int, key: str, **kwargs) -> str:
        """Queue the tenant's run for `key` under its deterministic id (unique); requeue it when
        the job with that id failed or its run went stale (its worker died)."""
        job_id = self.job_id(tenant_id, key)
        app = current_app._get_current_object()
        if not app.config.get("REDIS_URL"):
            return dispatch(self.job, tenant_id, key, job_id=job_id, **kwargs)
        from rq.exceptions import DuplicateJobError, NoSuchJobError
        from rq.job import Job, JobStatus

        q = queue(app)
        for _ in range(2):
            try:
                return q.enqueue(self.job, args=(tenant_id, key), kwargs=kwargs, job_id=job_id, unique=True,
                                 job_timeout=RUN_TIMEOUT).id
            except DuplicateJobError:
                try:
                    job = Job.fetch(job_id, connection=redis_connection(app))
                except NoSuchJobError:
                    continue
                status = job.get_status(refresh=True)
                dead = status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
                if status == JobStatus.STARTED and self.is_stale(tenant_id, key, app):
                    dead = True
                if not dead:
                    return job_id      # queued, running or finished recently: nothing to do
                self.log.warning("%s %s: job %s was %s; queued again", self.name, key, job_id, status)
                job.delete()
        return job_id

    def is_stale(self, tenant_id: int, key: str, app) -> bool:
        stale = float(app.config.get(self.stale_setting, STALE_SECONDS))
        with tenant_scope(tenant_id, descendants=False):
            run = self.run_of(tenant_id, key)
        return (run is not None and run.finished_at is None
                and run.heartbeat_at < utcnow() - timedelta(seconds=stale))

    def enqueue_every_tenant(self, now: str | None = None) -> list[str]:
        """The cron entry's work: one run per tenant with open accounts and due period key.
        `now` (ISO) stands for the clock and is handed on to each run."""
        moment = datetime.fromisoformat(now) if now else datetime.now(timezone.utc)
        with unscoped():
            tenants = list(db.session.execute(select(Account.tenant_id).where(Account.status != "closed")
                                              .distinct().order_by(Account.tenant_id)).scalars())
        queued = []
        for tenant_id in tenants:
            try:
                with tenant_scope(tenant_id, descendants=False):
                    keys = self.due_keys(tenant_id, moment)
                for key in keys:
                    queued.append(self.enqueue(tenant_id, key, **({"now": now} if now else {})))
            except Exception:          # one tenant's trouble does not hold the others back
                self.log.exception("%ss of tenant %s not queued", self.name, tenant_id)
                db.session.rollback()
        db.session.commit()
        return queued
