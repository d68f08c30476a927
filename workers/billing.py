"""Billing-cycle jobs (app/billing/cycle.py): the period runs and the owed charges after a credit.

- `enqueue_period_runs` (cron, every 10 minutes): for every tenant with accounts, the period
  keys current now; one `charge_period` job per tenant and key, job id
  `charge-run-<tenant>-<key>`, `unique=True`; a failed job, or one whose run stopped beating
  for `BILLING_RUN_STALE_SECONDS`, is queued again (workers/period_runs.py, as for invoices).
- `charge_period(tenant, key)`: the run, one commit per batch of accounts; a big run queues
  `help_charge_period` jobs (one per other worker) that share its batches (SKIP LOCKED).
- `apply_owed(tenant, account)`: queued by app/ledger.py after a credit, keyed on the credit.
Thin: open a scope, call the domain, commit.
"""
import logging
import time
from datetime import datetime

from flask import current_app

from app.billing.cycle import due_run_keys, run_of
from app.billing.runs import run_job_id  # (one name for the run's job, app and workers)
from app.extensions import db
from app.jobs import queue, set_progress
from tenants.scope import tenant_scope
from workers.period_runs import RUN_TIMEOUT, PeriodRuns
from workers.runner import in_app_context

log = logging.getLogger(__name__)

HELPER_MIN_ACCOUNTS = 5000      # a run asks for a helper job per this many accounts left (see charge_period)
MAX_HELPERS = 3


@in_app_context
def charge_period(tenant_id: int, key: str, batch_size: int | None = None, pause: float = 0.0,
                  now: str | None = None, helpers: int | None = None) -> dict:
    """Charge the tenant's accounts for the period `key`: batches committed one by one, first
    skipping accounts another worker holds, then a pass that waits for them. `pause` (seconds
    between batches) spares a busy database.

    A big run asks for help: `helpers` more jobs of the same run (default: one per other worker
    listening on the queue, for a run of at least HELPER_MIN_ACCOUNTS per job), ids
    `charge-run-<tenant>-<key>-p<pass>-h<n>`. Each takes the next batch no one holds (SKIP
    LOCKED), so they share the accounts; this job reports the run's progress and, with its
    waiting pass, ends only when every account is done."""
    from app.billing import cycle

    moment = datetime.fromisoformat(now) if now else None
    batch_size = batch_size or cycle.BATCH_SIZE
    with tenant_scope(tenant_id, descendants=False):
        plan = cycle.start_run(tenant_id, key, moment)
        total = cycle.remaining(plan)
        run = cycle.run_of(tenant_id, key)
        if total == 0 and run.finished_at is not None:
            # A later tick of a finished run: nothing new (no account whose period started since).
            summary = {"run_id": run.id, "period": key, "finished": True, "this_job": 0,
                       **{o: getattr(run, o) for o in cycle.OUTCOMES}}
            db.session.commit()
            return summary
        number = cycle.begin_pass(plan)
        base = cycle.marked(plan)
        db.session.commit()
        set_progress(0, total, period=key)
        wanted = _helpers_wanted(total) if helpers is None else helpers
        for n in range(1, wanted + 1):
            _enqueue_helper(f"{run_job_id(tenant_id, key)}-p{number}-h{n}", tenant_id, key,
                            batch_size=batch_size, pause=pause, now=now)

        def progress(done: int) -> None:
            # The whole run's progress, helpers included: the run's marks since this pass began.
            set_progress(min(total, cycle.marked(plan) - base) if wanted else done, total, period=key)

        done = _work(plan, batch_size, pause, progress)
        progress(done)                 # the helpers' last batches, committed after ours
        finished = cycle.finish_run(plan)
        run = cycle.run_of(tenant_id, key)
        summary = {"run_id": run.id, "period": key, "finished": finished, "this_job": done,
                   **{o: getattr(run, o) for o in cycle.OUTCOMES}}
        db.session.commit()
    if summary["failed"]:
        log.warning("charge run %s of tenant %s: %s account(s) failed", key, tenant_id, summary["failed"])
    return summary


@in_app_context
def help_charge_period(tenant_id: int, key: str, batch_size: int | None = None, pause: float = 0.0,
                       now: str | None = None) -> dict:
    """A helper of a big run (queued by `charge_period`): the same batches, shared through SKIP
    LOCKED; no pass of its own. Ends when no account is left that no one holds."""
    from app.billing import cycle

    moment = datetime.fromisoformat(now) if now else None
    with tenant_scope(tenant_id, descendants=False):
        plan = cycle.start_run(tenant_id, key, moment)
        db.session.commit()
        done = _work(plan, batch_size or cycle.BATCH_SIZE, pause, None, waiting_pass=False)
        finished = cycle.finish_run(plan)
        db.session.commit()
    return {"period": key, "this_job": done, "finished": finished}


def _work(plan, batch_size: int, pause: float, progress, *, waiting_pass: bool = True) -> int:
    """The run's batches, one commit each: first skipping the accounts another transaction
    holds, then (`waiting_pass`) waiting for them. Returns how many accounts this job did."""
    from app.billing import cycle

    failed: set[int] = set()
    done = 0
    for skip_locked in (True, False) if waiting_pass else (True,):
        after = 0
        while True:
            result = cycle.charge_batch(plan, after_id=after, batch_size=batch_size, skip_locked=skip_locked,
                                        exclude=failed)
            db.session.commit()                    # one commit per batch
            if not result.ids:
                break
            failed |= {a for a, (o, _) in result.outcomes.items() if o == "failed"}
            done += len(result.outcomes)
            after = result.last_id
            if progress is not None:
                progress(done)
            if pause:
                time.sleep(pause)
    return done


def _helpers_wanted(total: int) -> int:
    """One helper per other worker on the queue, each with at least HELPER_MIN_ACCOUNTS to do,
    at most BILLING_RUN_HELPERS (default 3); none without Redis (jobs run in-process)."""
    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        return 0
    from rq import Worker

    limit = int(app.config.get("BILLING_RUN_HELPERS", MAX_HELPERS))
    by_size = total // int(app.config.get("BILLING_RUN_HELPER_MIN_ACCOUNTS", HELPER_MIN_ACCOUNTS)) - 1
    if min(limit, by_size) <= 0:
        return 0
    others = Worker.count(queue=queue(app)) - 1
    return max(0, min(limit, by_size, others))


def _enqueue_helper(job_id: str, tenant_id: int, key: str, **kwargs) -> None:
    from rq.exceptions import DuplicateJobError

    app = current_app._get_current_object()
    try:
        queue(app).enqueue(help_charge_period, args=(tenant_id, key), kwargs=kwargs, job_id=job_id, unique=True,
                           job_timeout=RUN_TIMEOUT)
    except DuplicateJobError:
        pass                           # this pass asked for it already


@in_app_context
def apply_owed(tenant_id: int, account_id: int) -> dict:
    from app.billing.cycle import apply_owed as apply

    with tenant_scope(tenant_id, descendants=False):
        result = apply(account_id)
        db.session.flush()             # inside the scope: new rows are stamped with it
    return {"applied": result.applied, "left": result.left, "reactivated": result.reactivated}


# How the cron starts a run (a reseller's start, app/billing/runs.py, queues the same job id).
CHARGE_RUNS = PeriodRuns("charge run", charge_period, run_job_id, run_of, due_run_keys,
                         stale_setting="BILLING_RUN_STALE_SECONDS", log=log)


def enqueue_run(tenant_id: int, key: str, **kwargs) -> str:
    """Queue the tenant's charge run for `key` (workers/period_runs.py: unique id, requeued when dead)."""
    return CHARGE_RUNS.enqueue(tenant_id, key, **kwargs)


@in_app_context
def enqueue_period_runs(now: str | None = None) -> list[str]:
    """The cron entry: one run per tenant and current period key (autorefill is part of it)."""
    return CHARGE_RUNS.enqueue_every_tenant(now)
