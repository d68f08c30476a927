"""The reseller's taxes list (/reseller/taxes, issue 17 point 1): name, rate, order, compound,
active. Every reseller login sees it; only the owner changes it (403 on a POST otherwise).

GET  /reseller/taxes                       the list and the add form
POST /reseller/taxes                       add a tax
POST /reseller/taxes/<tax_id>              change one (its row's form)
POST /reseller/taxes/<tax_id>/delete       delete one no invoice used (else: deactivate it)
The forms post with htmx and swap #taxes; a refused field shows its message next to it (422)
and nothing is written. Thin: load through the tenant scope, one domain operation
(app/invoicing/taxes.py), commit once.
"""
from flask import flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.conflicts import FieldError
from app.extensions import db
from app.invoicing import taxes as tax_ops
from app.invoicing.models import AccountTax, Tax
from app.web import is_htmx, render
from portals.access import owner_only
from portals.reseller import bp
from tenants import get_or_404

FIELDS = ("name", "rate", "position")


def _values(form) -> dict:
    return {"name": form.get("name", ""), "rate": form.get("rate", ""), "position": form.get("position", ""),
            "compound": form.get("compound") in ("1", "on", "true", "y"),
            "active": form.get("active") in ("1", "on", "true", "y")}


def _page(*, status=200, new=None, new_errors=None, row_values=None, row_errors=None, message=None):
    tenant_id = current_user.tenant_id
    taxes = tax_ops.taxes_of(tenant_id)
    used = dict(db.session.execute(select(AccountTax.tax_id, func.count()).where(AccountTax.tenant_id == tenant_id)
                                   .group_by(AccountTax.tax_id)).all())
    new = new or {"name": "", "rate": "", "position": tax_ops.next_position(tenant_id), "compound": False,
                  "active": True}
    return render("reseller/taxes.html", status=status, taxes=taxes, used=used, new=new, new_errors=new_errors or {},
                  row_values=row_values or {}, row_errors=row_errors or {}, message=message,
                  may_edit=current_user.role == "reseller_owner", rate_text=tax_ops.rate_text, title="Taxes")


def _done(message: str):
    db.session.commit()
    if is_htmx():
        return _page(message=message)
    flash(message, "success")
    return redirect(url_for("reseller.taxes"), code=303)


def _errors_of(e: FieldError) -> dict:
    return {e.field if e.field in FIELDS else "form": e.message}


@bp.route("/taxes", methods=["GET", "POST"])
def taxes():
    if request.method == "GET":
        return _page()
    owner_only()
    values = {**_values(request.form), "active": True}        # a new tax is active
    try:
        tax = tax_ops.create_tax(current_user.tenant_id, **values)
    except FieldError as e:
        db.session.rollback()
        return _page(status=422, new=values, new_errors=_errors_of(e))
    return _done(f"Tax “{tax.name}” added ({tax_ops.rate_text(tax.rate)}%).")


@bp.post("/taxes/<int:tax_id>")
def tax_edit(tax_id):
    tax = get_or_404(Tax, tax_id)           # another reseller's tax: 404 before anything else
    owner_only()
    values = _values(request.form)
    try:
        changes = tax_ops.update_tax(tax, **values)
    except FieldError as e:
        db.session.rollback()
        return _page(status=422, row_values={tax_id: values}, row_errors={tax_id: _errors_of(e)})
    return _done(f"Tax “{tax.name}” saved." if changes else "Nothing changed.")


@bp.post("/taxes/<int:tax_id>/delete")
def tax_delete(tax_id):
    tax = get_or_404(Tax, tax_id)
    owner_only()
    name = tax.name
    try:
        accounts = tax_ops.delete_tax(tax)
    except FieldError as e:
        db.session.rollback()
        return _page(status=409, row_errors={tax_id: {"form": e.message}})
    return _done(f"Tax “{name}” deleted" + (f"; {accounts} account(s) no longer pay it." if accounts else "."))
