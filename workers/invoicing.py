"""Invoicing jobs (app/invoicing/runs.py): the document runs for closed periods.

- `enqueue_invoice_runs` (cron, every 10 minutes, after the charge runs' tick): for every tenant
  with accounts, the closed period keys at that moment; one `document_period` job per tenant
  and key, job id `invoice-run-<tenant>-<key>`, `unique=True`; a failed job, or one whose run
  stopped beating for `INVOICE_RUN_STALE_SECONDS`, is queued again (workers/period_runs.py, as
  for charge runs).
- `document_period(tenant, key)`: invoices and statements, one commit per batch of accounts.
Thin: open a scope, call the domain, commit.
"""
import logging
import time
from datetime import datetime

from app.extensions import db
from app.invoicing.runs import due_keys, run_job_id, run_of
from app.jobs import set_progress
from tenants.scope import tenant_scope
from workers.period_runs import PeriodRuns
from workers.runner import in_app_context

log = logging.getLogger(__name__)


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


INVOICE_RUNS = PeriodRuns("invoice run", document_period, run_job_id, run_of, due_keys,
                          stale_setting="INVOICE_RUN_STALE_SECONDS", log=log)


def enqueue_run(tenant_id: int, key: str, **kwargs) -> str:
    """Queue the tenant's document run for `key` (workers/period_runs.py: unique id, requeued when dead)."""
    return INVOICE_RUNS.enqueue(tenant_id, key, **kwargs)


@in_app_context
def enqueue_invoice_runs(now: str | None = None) -> list[str]:
    """The cron entry: one document run per tenant and closed period key."""
    return INVOICE_RUNS.enqueue_every_tenant(now)
