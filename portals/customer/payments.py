"""Customer portal: top up with Stripe Checkout, follow a payment, the payment history.

Thin: app/payments/checkout.py creates the session and the pending payment; only the signed
webhook credits. The payment page polls itself (htmx, every 1.5 s) until the webhook has
credited, then says "Payment received".
"""
import uuid

from flask import abort, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, StringField

from app import money
from app.extensions import db
from app.invoicing import taxes
from app.payments import checkout, history
from app.payments.models import Payment
from app.web import render
from portals.customer import bp
from portals.customer.routes import my_account


class TopupForm(FlaskForm):
    amount = StringField("Other amount")
    preset = HiddenField()
    nonce = HiddenField()


def _topup_page(account, form=None, *, status=200, error=None, notice=None):
    limits = checkout.limits_for(account.tenant_id, account.currency)
    configured = bool(checkout.secret_key_for(account.tenant_id))
    form = form or TopupForm(formdata=None, nonce=uuid.uuid4().hex)
    if error:
        form.amount.errors = list(form.amount.errors) + [error]
    return render("customer/topup.html", status=status, account=account, form=form, limits=limits,
                  configured=configured, notice=notice, tax_note=_tax_note(account, limits), title="Top up")


def _tax_note(account, limits):
    """A prepaid top-up includes the account's taxes (docs/invoicing.md): say so, with an example
    of what reaches the balance. None when no tax applies."""
    if account.billing_type != "prepaid":
        return None
    specs = taxes.applicable(account.id)
    if not specs:
        return None
    example = limits.presets[0] if limits.presets else limits.minimum
    net, _ = taxes.split_inclusive(example, specs, account.currency)
    return {"names": ", ".join(t.name for t in specs), "example": example, "net": net}


@bp.route("/topup", methods=["GET", "POST"])
def topup():
    account = my_account()
    if request.method == "GET":
        notice = "The top-up was cancelled: nothing was charged." if request.args.get("cancelled") else None
        return _topup_page(account, notice=notice)
    form = TopupForm()
    if not form.validate():
        abort(400, description="The form expired; reload the page and try again.")
    amount = form.preset.data or form.amount.data
    try:
        payment, url = checkout.start_topup(
            account.id, amount, nonce=form.nonce.data or "",
            success_url=url_for("customer.payment_return", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for("customer.topup", cancelled=1, _external=True), created_by_id=current_user.id)
    except checkout.TopupError as e:
        db.session.rollback()
        form.preset.data = ""
        return _topup_page(account, form, status=422, error=str(e))
    db.session.commit()
    return redirect(url, code=303)


@bp.get("/payments/return")
def payment_return():
    """Stripe sends the customer here after paying: find the payment, show its page. Credits nothing."""
    session_id = (request.args.get("session_id") or "").strip()
    payment = db.session.execute(select(Payment).where(Payment.provider == "stripe", Payment.provider_ref == session_id,
                                                       Payment.account_id == current_user.account_id)
                                 ).scalar_one_or_none() if session_id else None
    if payment is None:
        abort(404)
    return redirect(url_for("customer.payment", payment_id=payment.id), code=303)


@bp.get("/payments/<int:payment_id>")
def payment(payment_id):
    account = my_account()
    p = db.session.execute(select(Payment).where(Payment.id == payment_id, Payment.account_id == account.id)
                           ).scalar_one_or_none()
    if p is None:
        abort(404)
    bill = applied = None
    if p.invoice_id:
        from app.invoicing.models import Invoice, InvoicePayment

        bill = db.session.execute(select(Invoice).where(Invoice.id == p.invoice_id)).scalar_one_or_none()
        applied = db.session.execute(select(InvoicePayment).where(InvoicePayment.payment_id == p.id)
                                     ).scalars().first()
    return render("customer/payment.html", account=account, payment=p, received=checkout.received(p), bill=bill,
                  applied=applied, title="Payment")


@bp.get("/payments")
def payments():
    account = my_account()
    f, errors = history.Filters.from_args(request.args, account_id=account.id)
    rows, total = history.page(f)
    return render("customer/payments.html", account=account, rows=rows, total=total, filters=f, errors=errors,
                  statuses=history.STATUS_FILTERS, page_size=history.PAGE_SIZE, title="Payments",
                  format_money=money.format_money)
