"""Email jobs: send one queued notification (app.notifications.outbox.deliver), and the alert
sweep (app.notifications.alerts). Thin."""
from datetime import datetime, timezone

from app.jobs import dispatch
from app.notifications.outbox import deliver
from workers.runner import in_app_context


@in_app_context
def send_notification(notification_id: int, tenant_id: int) -> str:
    return deliver(notification_id, tenant_id)


@in_app_context
def sweep_alerts() -> dict:
    from app.notifications.alerts import sweep
    from tenants.scope import unscoped

    with unscoped():                      # every tenant's accounts: a platform job
        return sweep(datetime.now(timezone.utc).replace(tzinfo=None))


@in_app_context
def enqueue_alert_sweep() -> str:
    """The cron entry: one job id per 5-minute slot, so a doubled tick queues one sweep."""
    now = datetime.now(timezone.utc)
    return dispatch(sweep_alerts, job_id=f"alert-sweep-{now:%Y%m%d%H}{now.minute // 5:02d}")
