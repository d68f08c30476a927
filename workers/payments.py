"""Payment jobs: the receipt emails of credited payments. Thin."""
from app.jobs import woken
from app.payments.receipts import WAKE, send_due_receipts, send_receipt as _send_receipt
from workers.runner import in_app_context


@in_app_context
def send_receipts() -> int:
    """Woken after credits (app.jobs.wake) and on the cron: every receipt marked due."""
    woken(WAKE)
    return send_due_receipts()


@in_app_context
def send_receipt(payment_id: int, tenant_id: int) -> str:
    """One payment's receipt: jobs queued before receipts were tracked on the payment."""
    return _send_receipt(payment_id, tenant_id)
