"""Payment jobs: the receipt email after a credited payment. Thin."""
from app.payments.receipts import send_receipt as _send_receipt
from workers.runner import in_app_context


@in_app_context
def send_receipt(payment_id: int, tenant_id: int) -> str:
    return _send_receipt(payment_id, tenant_id)
