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
    """Expire the accounts past their expiry, then send the alerts due (expiry soon included)."""
    from app.accounts.expiry import expire_due_accounts
    from app.notifications.alerts import sweep
    from tenants.scope import unscoped

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with unscoped():                      # every tenant's accounts: a platform job
        expired = expire_due_accounts(now)
        return {"expired": len(expired), **sweep(now)}


@in_app_context
def enqueue_alert_sweep() -> str:
    """The cron entry: one job id per 5-minute slot, so a doubled tick queues one sweep."""
    now = datetime.now(timezone.utc)
    return dispatch(sweep_alerts, job_id=f"alert-sweep-{now:%Y%m%d%H}{now.minute // 5:02d}")
