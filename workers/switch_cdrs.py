"""Switch CDR reconciliation job (app/calls/switch_cdrs.py): bills the calls that ended while
no watcher followed the switch. Thin: the domain takes its own rows, this commits."""
from datetime import datetime, timezone

from app.jobs import dispatch
from workers.runner import in_app_context


@in_app_context
def reconcile_switch_cdrs() -> dict:
    from app.calls.switch_cdrs import reconcile_switch_cdrs as reconcile

    return reconcile()


def reconcile_job_id(now: datetime | None = None) -> str:
    """One job id per minute: a doubled cron tick queues one run."""
    now = now or datetime.now(timezone.utc)
    return f"reconcile-switch-cdrs-{now:%Y%m%d%H%M}"


@in_app_context
def enqueue_switch_reconcile() -> str:
    """The cron entry: queue `reconcile_switch_cdrs` under this minute's job id."""
    return dispatch(reconcile_switch_cdrs, job_id=reconcile_job_id())
