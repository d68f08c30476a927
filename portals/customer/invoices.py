"""Customer portal: Bills (seed 003). The account's invoices, paid and unpaid, credit notes,
statements and receipts by interval; each as a page (HTML) and a PDF download; Pay on each
unpaid invoice (issue 18, point 2): Stripe Checkout for its open amount, then the payment page
that waits for the webhook. Thin: app/invoicing/listing.py lists, render.py renders,
app/payments/checkout.py starts the payment (only the webhook credits and marks it paid).
"""
import uuid

from flask import abort, redirect, request, url_for
from flask_login import current_user

from app.extensions import db
from app.invoicing import listing
from app.payments import checkout
from app.web import render
from portals import documents
from portals.access import may
from portals.customer import bp
from portals.customer.routes import my_account


def _bills_page(account, *, args=None, status=200, pay_error=None, notice=None):
    f, errors = listing.Filters.from_args(args if args is not None else request.args, account_id=account.id,
                                          statuses=listing.BILL_STATUSES)
    rows = listing.bills(account.id, f)
    unpaid = listing.unpaid_total(account.id)
    return render("customer/invoices.html", account=account, rows=rows, filters=f, errors=errors, unpaid=unpaid,
                  statuses=listing.BILL_STATUSES, nonce=uuid.uuid4().hex, pay_error=pay_error, notice=notice,
                  status=422 if errors or pay_error else status, title="Bills")


@bp.get("/invoices")
def invoices():
    return _bills_page(my_account(), notice="The payment was cancelled: nothing was charged."
                       if request.args.get("cancelled") else None)


def _doc_links(kind: str, id_: int):
    return [{"href": url_for("customer.invoices"), "label": "← Bills"},
            {"href": url_for(f"customer.{kind}_pdf", **{f"{kind}_id": id_}), "label": "Download PDF", "id": "download-pdf"}]


@bp.get("/invoices/<int:invoice_id>")
def invoice(invoice_id):
    doc = documents.load("invoice", invoice_id)
    actions = []
    inv = _invoice_or_404(invoice_id)
    if listing.amount_due(inv) > 0 and may("customer.invoice_pay", "POST"):
        actions.append({"href": url_for("customer.invoice_pay", invoice_id=invoice_id), "label": "Pay now",
                        "id": "pay-invoice", "fields": {"nonce": uuid.uuid4().hex}})
    return documents.html_response(doc, _doc_links("invoice", invoice_id), actions)


@bp.get("/invoices/<int:invoice_id>/pdf")
def invoice_pdf(invoice_id):
    return documents.pdf_response(documents.load("invoice", invoice_id))


@bp.get("/statements/<int:statement_id>")
def statement(statement_id):
    return documents.html_response(documents.load("statement", statement_id), _doc_links("statement", statement_id))


@bp.get("/statements/<int:statement_id>/pdf")
def statement_pdf(statement_id):
    return documents.pdf_response(documents.load("statement", statement_id))


@bp.get("/receipts/<int:receipt_id>")
def receipt(receipt_id):
    return documents.html_response(documents.load("receipt", receipt_id), _doc_links("receipt", receipt_id))


@bp.get("/receipts/<int:receipt_id>/pdf")
def receipt_pdf(receipt_id):
    return documents.pdf_response(documents.load("receipt", receipt_id))


def _invoice_or_404(invoice_id):
    from sqlalchemy import select

    from app.invoicing.models import Invoice

    inv = db.session.execute(select(Invoice).where(Invoice.id == invoice_id)).scalar_one_or_none()
    if inv is None:
        abort(404)
    return inv


@bp.post("/invoices/<int:invoice_id>/pay")
def invoice_pay(invoice_id):
    """Start paying a bill: Stripe Checkout for what is still due. Credits nothing."""
    _invoice_or_404(invoice_id)
    account = my_account()
    nonce = (request.form.get("nonce") or "").strip()
    try:
        payment, url = checkout.start_invoice_payment(
            invoice_id, nonce=nonce,
            success_url=url_for("customer.payment_return", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for("customer.invoices", cancelled=1, _external=True), created_by_id=current_user.id)
    except checkout.TopupError as e:
        db.session.rollback()
        return _bills_page(account, args={}, pay_error=(invoice_id, str(e)))
    db.session.commit()
    return redirect(url, code=303)
