"""The payment-received email with its receipt, queued through the notification outbox.

A prepaid account's payment has a numbered receipt (app/invoicing/receipts.py): the email names
it with its taxes and carries it as a PDF (app/invoicing/render.py).

A credit marks its payment's receipt "due" in the same transaction (`payments.receipt_status`)
and wakes the receipts job after the commit (`due()`, app.jobs.wake: one Redis SET while a run
waits, not an RQ enqueue per payment: the Stripe webhook's path stays short). The job
(`send_due_receipts`, also on the cron as a backstop) queues the email of every due receipt
and marks it "queued", so each receipt goes once, even if two runs overlap (SKIP LOCKED).
"""
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.invoicing.receipts import issue_receipt, receipt_for
from app.invoicing.taxes import TaxLine, total_of
from app.jobs import wake
from app.money import format_money
from app.notifications.outbox import queue_email
from app.payments.models import Payment, credit_key
from tenants.scope import tenant_scope, unscoped

JOB = "workers.payments.send_receipts"
WAKE = "payment-receipts"
BATCH = 200


def due(payment_id: int, tenant_id: int) -> None:
    """A payment was just credited and its receipt marked due: wake the receipts job."""
    wake(JOB, WAKE)


def send_due_receipts(batch: int = BATCH) -> int:
    """Queue the receipt of every payment marked due, oldest first; commits per batch.

    Returns how many were queued."""
    sent = 0
    while True:
        with unscoped():
            rows = db.session.execute(
                select(Payment.id, Payment.tenant_id).where(Payment.receipt_status == "due")
                .order_by(Payment.id).limit(batch).with_for_update(skip_locked=True, of=Payment)).all()
        for payment_id, tenant_id in rows:
            _queue_receipt(payment_id, tenant_id)
        db.session.commit()
        sent += len(rows)
        if len(rows) < batch:
            return sent


def send_receipt(payment_id: int, tenant_id: int) -> str:
    """One payment's receipt (the per-payment job of before: runs already queued still work).
    A receipt already queued is not queued again."""
    outcome = _queue_receipt(payment_id, tenant_id)
    db.session.commit()
    return outcome


def _queue_receipt(payment_id: int, tenant_id: int) -> str:
    with tenant_scope(tenant_id, descendants=False):
        p = db.session.execute(select(Payment).where(Payment.id == payment_id).with_for_update(of=Payment)) \
            .scalar_one_or_none()
        if p is None:
            return "missing"
        if p.receipt_status == "queued":
            return "already queued"
        account = db.session.execute(select(Account).where(Account.id == p.account_id)).scalar_one()
        # A prepaid account's numbered receipt (app/invoicing/receipts.py), with its taxes: a
        # card top-up's is issued here, from the taxes its credit paid (`receipt_taxes`).
        key = credit_key(p.provider, p.payment_intent_id, p.provider_ref)
        receipt = receipt_for(account.id, key) if p.ledger_entry_id else None
        if receipt is None and p.ledger_entry_id and p.receipt_taxes is not None:
            lines = [TaxLine.from_dict(d, n) for n, d in enumerate(p.receipt_taxes, 1)]
            receipt = issue_receipt(account, key, kind="payment", amount=p.amount,
                                    net=p.amount - total_of(lines), tax_lines=lines,
                                    ledger_entry_id=p.ledger_entry_id, payment_id=p.id, method=p.method,
                                    reference=p.reference or p.provider_ref, fresh=True)
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
        p.receipt_status = "queued"
        return "queued"


def _receipt_pdf(receipt_id: int) -> tuple[str, str, bytes]:
    """(file name, media type, PDF) of a receipt, for the email."""
    from app.invoicing import render

    doc = render.document("receipt", receipt_id)
    return render.filename(doc), "application/pdf", render.render_pdf(doc)
