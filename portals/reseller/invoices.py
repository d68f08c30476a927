"""Reseller portal: invoices of all its accounts and of one account (by interval and status,
totals per currency), each invoice, credit note, statement and receipt as a page and a PDF,
voiding an invoice through a confirmation page, recording a manual payment against an account
or one of its invoices (issue 18, point 4), and the invoice settings with a preview.
Thin: app/invoicing does the work.
"""
from datetime import date, timedelta

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from app import money
from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db
from app.invoicing import listing, options, render as docs
from app.invoicing.models import Invoice
from app.money import DECIMALS_SHOWN_MAX
from app.web import render
from portals import documents
from portals.access import owner_only
from portals.account_forms import MoneyField
from portals.reseller import bp
from tenants import Tenant, get_or_404


def _list(account=None):
    f, errors = listing.Filters.from_args(request.args, account_id=account.id if account else None)
    rows, total, totals = listing.page(f)
    extra = listing.bills(account.id, listing.Filters(status="", account_id=account.id), limit=50) if account else []
    return render("reseller/invoices.html", rows=rows, total=total, totals=totals, filters=f, errors=errors,
                  account=account, statuses=listing.STATUS_FILTERS, page_size=listing.PAGE_SIZE,
                  display_status=listing.display_status, amount_due=listing.amount_due,
                  last_day=lambda d: d - timedelta(days=1),
                  documents=[b for b in extra if b.kind in ("statement", "receipt")],
                  status=422 if errors else 200, title="Invoices")


@bp.get("/invoices")
def invoices():
    return _list()


@bp.get("/accounts/<int:account_id>/invoices")
def account_invoices(account_id):
    return _list(get_or_404(Account, account_id))


def _invoice(invoice_id) -> Invoice:
    return get_or_404(Invoice, invoice_id)


def _links(kind, id_, account_id):
    return [{"href": url_for("reseller.account_invoices", account_id=account_id), "label": "← Account's invoices"},
            {"href": url_for("reseller.invoices"), "label": "All invoices"},
            {"href": url_for(f"reseller.{kind}_pdf", **{f"{kind}_id": id_}), "label": "Download PDF", "id": "download-pdf"}]


@bp.get("/invoices/<int:invoice_id>")
def invoice(invoice_id):
    inv = _invoice(invoice_id)
    doc = documents.load("invoice", invoice_id)
    actions = []
    if current_user.role != "reseller_readonly":
        if listing.amount_due(inv) > 0:
            actions.append({"href": url_for("reseller.account_payment_new", account_id=inv.account_id,
                                            invoice_id=inv.id), "label": "Record a payment", "id": "record-payment",
                            "method": "get"})
        if inv.kind == "invoice" and inv.status in ("open", "paid"):
            actions.append({"href": url_for("reseller.invoice_void", invoice_id=inv.id), "label": "Void…",
                            "id": "void-invoice", "method": "get"})
    return documents.html_response(doc, _links("invoice", invoice_id, inv.account_id), actions)


@bp.get("/invoices/<int:invoice_id>/pdf")
def invoice_pdf(invoice_id):
    _invoice(invoice_id)
    return documents.pdf_response(documents.load("invoice", invoice_id))


@bp.get("/statements/<int:statement_id>")
def statement(statement_id):
    from app.invoicing.models import Statement

    st = get_or_404(Statement, statement_id)
    return documents.html_response(documents.load("statement", statement_id),
                                   _links("statement", statement_id, st.account_id))


@bp.get("/statements/<int:statement_id>/pdf")
def statement_pdf(statement_id):
    return documents.pdf_response(documents.load("statement", statement_id))


@bp.get("/receipts/<int:receipt_id>")
def receipt(receipt_id):
    from app.invoicing.models import Receipt

    r = get_or_404(Receipt, receipt_id)
    return documents.html_response(documents.load("receipt", receipt_id), _links("receipt", receipt_id, r.account_id))


@bp.get("/receipts/<int:receipt_id>/pdf")
def receipt_pdf(receipt_id):
    return documents.pdf_response(documents.load("receipt", receipt_id))


# --- void --------------------------------------------------------------------------------------

class VoidForm(FlaskForm):
    reason = StringField("Reason", validators=[InputRequired("Say why the invoice is voided; the credit note shows it."),
                                               Length(max=255)])


@bp.route("/invoices/<int:invoice_id>/void", methods=["GET", "POST"])
def invoice_void(invoice_id):
    """Confirm first (what voiding does), then void: a credit note cancels the invoice."""
    from app.invoicing import invoices as invoicing_ops

    inv = _invoice(invoice_id)
    account = get_or_404(Account, inv.account_id)
    form = VoidForm()
    status = 200
    if request.method == "POST":
        status = 422
        if inv.kind != "invoice" or inv.status not in ("open", "paid"):
            form.reason.errors = list(form.reason.errors) + [f"This {inv.kind.replace('_', ' ')} is {inv.status}: "
                                                              "it cannot be voided."]
        elif form.validate_on_submit():
            try:
                note = invoicing_ops.void_invoice(inv.id, reason=form.reason.data, created_by_id=current_user.id)
            except (FieldError, ValueError) as e:
                db.session.rollback()
                form.reason.errors = list(form.reason.errors) + [getattr(e, "message", str(e))]
            else:
                db.session.commit()
                flash(f"Invoice {inv.number} voided; credit note {note.number} issued.", "success")
                return redirect(url_for("reseller.invoice", invoice_id=note.id), code=303)
    return render("reseller/invoice_void.html", status=status, form=form, invoice=inv, account=account,
                  due=listing.amount_due(inv), title=f"Void invoice {inv.number}")


# --- manual payment (issue 18, point 4) --------------------------------------------------------

METHOD_LABELS = {"bank_transfer": "Bank transfer", "cash": "Cash", "cheque": "Cheque"}


class ManualPaymentForm(FlaskForm):
    method = SelectField("Method", choices=list(METHOD_LABELS.items()))
    reference = StringField("Reference", validators=[InputRequired("Enter the transfer's reference or a receipt number."),
                                                     Length(max=100)],
                            description="Recording the same reference twice credits once.")
    paid_on = DateField("Date received", validators=[InputRequired("Enter the date the money arrived.")])
    amount = MoneyField("Amount", validators=[InputRequired("Enter the amount received.")])
    invoice_id = SelectField("Pays invoice", coerce=str, validate_choice=False, validators=[Optional()])


def _open_invoices(account_id):
    return db.session.execute(select(Invoice).where(Invoice.account_id == account_id, Invoice.kind == "invoice",
                                                    Invoice.status == "open")
                              .order_by(Invoice.issued_at, Invoice.id)).scalars().all()


@bp.route("/accounts/<int:account_id>/payments/new", methods=["GET", "POST"])
def account_payment_new(account_id):
    from datetime import datetime, time

    from app.payments.operations import record_manual_payment

    account = get_or_404(Account, account_id)
    open_invoices = _open_invoices(account.id)
    choices = [("", "None: credit the balance")] + [
        (str(i.id), f"{i.number} · {money.format_money(listing.amount_due(i), i.currency)} due") for i in open_invoices]
    status = 200
    if request.method == "GET":
        wanted = request.args.get("invoice_id", "")
        chosen = next((i for i in open_invoices if str(i.id) == wanted), None)
        form = ManualPaymentForm(formdata=None, paid_on=date.today(), invoice_id=str(chosen.id) if chosen else "")
        if chosen:
            form.amount.data = listing.amount_due(chosen)
    else:
        form = ManualPaymentForm()
        status = 422
    form.invoice_id.choices = choices
    if request.method == "POST" and form.validate():
        invoice_id = int(form.invoice_id.data) if (form.invoice_id.data or "").isdigit() else None
        if invoice_id is not None and invoice_id not in {i.id for i in open_invoices}:
            form.invoice_id.errors = list(form.invoice_id.errors) + ["Choose an open invoice of this account."]
        elif form.paid_on.data > date.today():
            form.paid_on.errors = list(form.paid_on.errors) + ["The date cannot be in the future."]
        else:
            try:
                payment = record_manual_payment(account.id, form.amount.data, method=form.method.data,
                                                reference=form.reference.data,
                                                paid_at=datetime.combine(form.paid_on.data, time(12)),
                                                invoice_id=invoice_id, created_by_id=current_user.id)
            except money.MoneyError as e:
                db.session.rollback()
                form.amount.errors = list(form.amount.errors) + [str(e)]
            else:
                db.session.commit()
                flash(f"Payment {payment.reference} of {money.format_money(payment.amount, payment.currency)} recorded.",
                      "success")
                if invoice_id:
                    return redirect(url_for("reseller.invoice", invoice_id=invoice_id), code=303)
                return redirect(url_for("reseller.account_payments", account_id=account.id), code=303)
    return render("reseller/payment_new.html", status=status, form=form, account=account, title="Record a payment")


# --- invoice settings --------------------------------------------------------------------------

DECIMAL_CHOICES = [("", "The currency's own (cents: 2)")] + [(str(n), f"{n}") for n in range(DECIMALS_SHOWN_MAX + 1)]


class InvoiceSettingsForm(FlaskForm):
    legal_name = StringField("Legal name", validators=[Length(max=200)])
    address = TextAreaField("Address", validators=[Length(max=1000)], render_kw={"rows": 3})
    tax_number = StringField("Tax number (VAT ID)", validators=[Length(max=60)])
    email = StringField("Billing email", validators=[Length(max=254)])
    logo = FileField("Logo", description=f"PNG, JPEG or SVG, at most {options.LOGO_MAX_BYTES // 1024} KB.")
    remove_logo = BooleanField("Remove the logo")
    number_prefix = StringField("Invoice number prefix", validators=[Length(max=40)],
                                description="{year} becomes the issue year: INV-{year}- gives INV-2026-000123. "
                                            "A new prefix starts a new series.")
    number_digits = StringField("Digits", description="The number part, padded with zeros.")
    receipt_prefix = StringField("Receipt number prefix", validators=[Length(max=40)])
    payment_terms_days = StringField("Payment terms (days)", description="Due date = issue date + this many days.")
    issue_hour = StringField("Issue at (hour, account's time zone)", description="0 to 23, on the billing day.")
    invoice_format = SelectField("Email attachment", choices=[("pdf", "PDF"), ("html", "HTML")])
    decimals_shown = SelectField("Decimals shown", choices=DECIMAL_CHOICES, validate_choice=False,
                                 description="For every amount on a document; rates per minute show at least 4.")
    include_rate_table = BooleanField("Include the rate table (the rates that priced the period's calls)")
    include_payment_summary = BooleanField("Include a payment summary (payments and credits of the period)")
    skip_zero = BooleanField("Skip zero invoices (no invoice for a period with nothing to bill)")
    footer = TextAreaField("Footer", validators=[Length(max=1000)], render_kw={"rows": 3},
                           description="Printed at the foot of every page: bank details, registration number…")


def _tenant() -> Tenant:
    return db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one()


@bp.route("/invoice-settings", methods=["GET", "POST"])
def invoice_settings():
    tenant = _tenant()
    values = options.current(tenant.id)
    status = 200
    if request.method == "GET":
        data = dict(values)
        data["decimals_shown"] = "" if values["decimals_shown"] is None else str(values["decimals_shown"])
        for key in ("number_digits", "payment_terms_days", "issue_hour"):
            data[key] = str(values[key])
        form = InvoiceSettingsForm(formdata=None, data=data)
    else:
        owner_only()
        form = InvoiceSettingsForm()
        status = 422
        if form.validate():
            upload = form.logo.data
            logo = upload.read(options.LOGO_MAX_BYTES + 1) if upload and getattr(upload, "filename", "") else None
            try:
                options.save_settings(
                    tenant.id, legal_name=form.legal_name.data, address=form.address.data,
                    tax_number=form.tax_number.data, email=form.email.data, number_prefix=form.number_prefix.data,
                    receipt_prefix=form.receipt_prefix.data, number_digits=form.number_digits.data,
                    payment_terms_days=form.payment_terms_days.data, decimals_shown=form.decimals_shown.data,
                    include_rate_table=form.include_rate_table.data,
                    include_payment_summary=form.include_payment_summary.data, skip_zero=form.skip_zero.data,
                    footer=form.footer.data, issue_hour=form.issue_hour.data, invoice_format=form.invoice_format.data,
                    logo=logo, logo_filename=getattr(upload, "filename", "") or "", remove_logo=form.remove_logo.data)
            except FieldError as e:
                db.session.rollback()
                field = getattr(form, e.field or "", None) or form.legal_name
                field.errors = list(field.errors) + [e.message]
            else:
                db.session.commit()
                flash("Invoice settings saved.", "success")
                return redirect(url_for("reseller.invoice_settings"), code=303)
    logo = options.logo_of(tenant.id)
    return render("reseller/invoice_settings.html", status=status, form=form, tenant=tenant,
                  logo_uri=docs.logo_data_uri({"logo": logo[0], "logo_type": logo[1]}) if logo else None,
                  may_edit=current_user.role == "reseller_owner", title="Invoice settings")


@bp.get("/invoice-settings/preview")
def invoice_settings_preview():
    """A sample invoice with the saved settings (HTML, or ?format=pdf)."""
    tenant = _tenant()
    doc = docs.sample_invoice(tenant.id, tenant.currency, tenant_name=tenant.name)
    if request.args.get("format") == "pdf":
        return documents.pdf_response(doc, inline=True)
    if request.args.get("format") not in (None, "", "html"):
        abort(404)
    return documents.html_response(doc, [{"href": url_for("reseller.invoice_settings"), "label": "← Invoice settings"},
                                         {"href": url_for("reseller.invoice_settings_preview", format="pdf"),
                                          "label": "As PDF", "id": "preview-pdf"}])
