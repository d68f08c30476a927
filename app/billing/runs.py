"""Billing runs as people watch them (issue 16, point 8): the runs in scope with their counts,
the live progress of an unfinished one (the job's progress meta), the accounts a run failed and
why, and a reseller starting its own tenant's runs for the current period (the same job id as
the cron's, unique, and every charge keyed: starting twice charges nothing twice)."""
from datetime import datetime, timezone

from sqlalchemy import func, select

from app import audit
from app.billing.cycle import ChargeRun, ChargeRunAccount, due_run_keys
from app.extensions import db
from app.jobs import enqueue, job_status


def run_job_id(tenant_id: int, key: str) -> str:
    """As workers/billing.py names a run's job (one id per tenant and period)."""
    return f"charge-run-{tenant_id}-{key}"


def runs(limit: int = 100) -> list[ChargeRun]:
    return db.session.execute(select(ChargeRun).order_by(ChargeRun.started_at.desc(), ChargeRun.id.desc())
                              .limit(limit)).scalars().all()


def progress(run: ChargeRun) -> dict | None:
    """{"done", "total", "status"} of an unfinished run's job, or None when nothing runs it."""
    if run.finished_at is not None:
        return None
    info = job_status(run_job_id(run.tenant_id, run.period))
    if info is None:
        return None
    meta = info.get("meta") or {}
    return {"status": info["status"], "done": int(meta.get("done", 0)), "total": int(meta.get("total", 0))}


def failures(run_id: int) -> list[ChargeRunAccount]:
    return db.session.execute(select(ChargeRunAccount).where(ChargeRunAccount.run_id == run_id,
                                                             ChargeRunAccount.outcome == "failed")
                              .order_by(ChargeRunAccount.account_id)).scalars().all()


def outcome_counts(run_id: int) -> dict[str, int]:
    return dict(db.session.execute(select(ChargeRunAccount.outcome, func.count())
                                   .where(ChargeRunAccount.run_id == run_id)
                                   .group_by(ChargeRunAccount.outcome)).all())


def start_current_runs(tenant_id: int, now: datetime | None = None) -> list[str]:
    """Queue (after the commit) the tenant's runs for the periods current now; their keys."""
    keys = due_run_keys(tenant_id, now or datetime.now(timezone.utc))
    for key in keys:
        enqueue("workers.billing.charge_period", tenant_id, key, job_id=run_job_id(tenant_id, key))
    audit.record("billing.runs_started", None, tenant_id=tenant_id, periods=keys)
    return keys
