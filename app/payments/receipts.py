"""The payment-received email with its receipt, queued through the notification outbox."""
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.money import format_money
from app.notifications.outbox import queue_email
from app.payments.models import Payment
from tenants.scope import tenant_scope


def send_receipt(payment_id: int, tenant_id: int) -> str:
    with tenant_scope(tenant_id, descendants=False):
        p = db.session.execute(select(Payment).where(Payment.id == payment_id)).scalar_one_or_none()
        if p is None:
            return "missing"
        account = db.session.execute(select(Account).where(Account.id == p.account_id)).scalar_one()
        document = _receipt_document(p)
        body = (f"Payment received, thank you.\n\nReceipt {document[0] if document else p.id}\n"
                f"Account: {account.account_number} {account.name}\n"
                f"Amount: {format_money(p.amount, p.currency)}\nMethod: {p.method}\nReference: {p.reference or p.provider_ref}\n"
                f"Date: {p.paid_at:%Y-%m-%d %H:%M} UTC\nBalance after: {format_money(account.balance, account.currency)}\n")
        if p.invoice_id and document is None:
            body += "Your bills and their status are in the customer portal, under Bills.\n"
        queue_email(tenant_id=tenant_id, account_id=account.id, to=account.email, kind="payment_received",
                    subject=f"Payment received: {format_money(p.amount, p.currency)}", body=body,
                    attachment=document[1] if document else None)
        db.session.commit()
        return "queued"


def _receipt_document(p: Payment):
    """(receipt number, (file name, type, PDF)) of the numbered receipt a prepaid account's
    payment got (app/invoicing/receipts.py), or None (a postpaid payment goes to invoices)."""
    from app.invoicing import render
    from app.invoicing.models import Receipt

    receipt = db.session.execute(select(Receipt).where(Receipt.payment_id == p.id)).scalars().first()
    if receipt is None:
        return None
    doc = render.document("receipt", receipt.id)
    return receipt.number, (render.filename(doc), "application/pdf", render.render_pdf(doc))
