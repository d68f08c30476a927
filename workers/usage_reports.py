"""Automatic usage reports (app/notifications/usage_reports.py): an hourly cron tick queues
the reports whose period has ended. Thin: the domain queues, this commits."""
from datetime import datetime, timezone

from app.jobs import dispatch
from workers.runner import in_app_context


@in_app_context
def queue_usage_reports() -> dict:
    from app.notifications.usage_reports import queue_due_reports
    from tenants.scope import unscoped

    with unscoped():                     # every tenant's accounts: a platform job
        return queue_due_reports()


@in_app_context
def enqueue_usage_reports() -> str:
    """The cron entry: one job id per hour, so a doubled tick queues one run."""
    now = datetime.now(timezone.utc)
    return dispatch(queue_usage_reports, job_id=f"usage-reports-{now:%Y%m%d%H}")
