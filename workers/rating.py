"""Rating jobs: pending CDRs into the ledger, rate-deck imports. Thin: scope, domain, commit.

`rate_pending_calls` picks up every call the AMI watcher stored but could not rate at once
(a crash between the CDR and its rating...). A call rated with an error counts as rated: it is
rated again only by a re-rate (`rerate_matching_calls`, started from the calls browser). It is started by
the cron process every minute with a deterministic job id per minute (`enqueue_rating`), and a
second run changes nothing: calls are locked while rated and rated calls are never taken again.
"""
import logging
import time
from datetime import datetime, timezone

from sqlalchemy import select

from app.extensions import db
from app.jobs import dispatch
from workers.runner import in_app_context
from tenants.scope import tenant_scope, unscoped

log = logging.getLogger(__name__)


@in_app_context
def rate_pending_calls(tenant_id: int | None = None, batch_size: int = 5000, time_limit: float = 120.0) -> dict:
    """Rate unrated calls, one tenant at a time, `batch_size` calls per transaction.

    No new batch starts after `time_limit` seconds (the rest waits for the next minute's run),
    so a backlog never outlives RQ's job timeout."""
    from app.calls.models import Call
    from app.rating.cdr import RatingSummary, rate_calls

    if tenant_id is None:
        with unscoped():
            tenants = list(db.session.execute(
                select(Call.tenant_id).where(Call.rated_at.is_(None)).distinct()).scalars())
        db.session.commit()
    else:
        tenants = [tenant_id]
    total = RatingSummary()
    deadline = time.monotonic() + time_limit
    for tid in sorted(tenants):
        last_id = 0
        while time.monotonic() < deadline:
            with tenant_scope(tid, descendants=False):
                ids = list(db.session.execute(
                    select(Call.id).where(Call.tenant_id == tid, Call.rated_at.is_(None), Call.id > last_id)
                    .order_by(Call.id).limit(batch_size)).scalars())
                if not ids:
                    db.session.commit()
                    break
                summary = rate_calls(ids)
            db.session.commit()                       # one commit per batch
            last_id = ids[-1]
            for k in ("rated", "charged", "errors", "skipped", "bundle_seconds"):
                setattr(total, k, getattr(total, k) + getattr(summary, k))
            for currency, amount in summary.amounts.items():
                total.amounts[currency] = total.amounts.get(currency, 0) + amount
            if len(ids) < batch_size:
                break
    if total.rated or total.skipped:
        log.info("rated %d calls (%d charged, %d errors, %d skipped)", total.rated, total.charged,
                 total.errors, total.skipped)
    return total.as_dict()


def rating_job_id(now: datetime | None = None) -> str:
    """One job id per minute: a doubled cron tick queues one run."""
    now = now or datetime.now(timezone.utc)
    return f"rate-pending-calls-{now:%Y%m%d%H%M}"


@in_app_context
def enqueue_rating() -> str:
    """The cron entry: queue `rate_pending_calls` under this minute's job id."""
    return dispatch(rate_pending_calls, job_id=rating_job_id())


@in_app_context
def import_rate_deck(import_id: int) -> dict:
    """Run one uploaded deck import (app.rating.imports.run_import); progress in the job meta."""
    from app.rating.imports import run_import

    return run_import(import_id)


@in_app_context
def rerate_matching_calls(run_id: int) -> dict:
    """Re-rate every call of one CallRerating run (app.rating.rerate.run_rerating); progress in the job meta."""
    from app.rating.rerate import run_rerating

    return run_rerating(run_id)
