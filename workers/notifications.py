"""Email job: send one queued notification (app.notifications.outbox.deliver). Thin."""
from app.notifications.outbox import deliver
from workers.runner import in_app_context


@in_app_context
def send_notification(notification_id: int, tenant_id: int) -> str:
    return deliver(notification_id, tenant_id)
