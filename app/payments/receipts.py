"""The payment-received email with its receipt, queued through the notification outbox.

A prepaid account's payment has a numbered receipt (app/invoicing/receipts.py): the email names
it with its taxes and carries it as a PDF (app/invoicing/render.py)."""
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.invoicing.receipts import receipt_for
from app.money import format_money
from app.notifications.outbox import queue_email
from app.payments.models import Payment
from app.payments.webhooks import payment_key
from tenants.scope import tenant_scope


def send_receipt(payment_id: int, tenant_id: int) -> str:
    with tenant_scope(tenant_id, descendants=False):
        p = db.session.execute(select(Payment).where(Payment.id == payment_id)).scalar_one_or_none()
        if p is None:
            return "missing"
        account = db.session.execute(select(Account).where(Account.id == p.account_id)).scalar_one()
        # A prepaid account's numbered receipt (app/invoicing/receipts.py), with its taxes.
        receipt = receipt_for(account.id, payment_key(p)) if p.ledger_entry_id else None
        number = receipt.number if receipt is not None else str(p.id)
        taxes = ""
        if receipt is not None and receipt.tax_total:
            taxes = "".join(f"  {t['name']}: {format_money(t['amount'], p.currency)}\n" for t in receipt.taxes)
            taxes = f"Of which taxes:\n{taxes}Credited to the balance: {format_money(receipt.net, p.currency)}\n"
        body = (f"Payment received, thank you.\n\nReceipt {number}\nAccount: {account.account_number} {account.name}\n"
                f"Amount: {format_money(p.amount, p.currency)}\n{taxes}Method: {p.method}\n"
                f"Reference: {p.reference or p.provider_ref}\n"
                f"Date: {p.paid_at:%Y-%m-%d %H:%M} UTC\nBalance after: {format_money(account.balance, account.currency)}\n")
        if p.invoice_id and receipt is None:
            body += "Your bills and their status are in the customer portal, under Bills.\n"
        queue_email(tenant_id=tenant_id, account_id=account.id, to=account.email, kind="payment_received",
                    subject=f"Payment received: {format_money(p.amount, p.currency)}", body=body,
                    attachment=_receipt_pdf(receipt.id) if receipt is not None else None)
        db.session.commit()
        return "queued"


def _receipt_pdf(receipt_id: int) -> tuple[str, str, bytes]:
    """(file name, media type, PDF) of a receipt, for the email."""
    from app.invoicing import render

    doc = render.document("receipt", receipt_id)
    return render.filename(doc), "application/pdf", render.render_pdf(doc)
