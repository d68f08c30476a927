"""Reseller settings (/reseller/settings): what the reseller's owner sets for the whole reseller.

Here: the limit above which a ledger adjustment needs a second confirmation. Every reseller
login sees the page; only the owner saves it.
"""
from flask import flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms.validators import InputRequired

from app.extensions import db
from app.resellers.operations import TenantError, set_adjustment_limit
from app.web import render
from portals.access import owner_only
from portals.account_forms import MoneyField
from portals.reseller import bp
from tenants import Tenant


class AdjustmentLimitForm(FlaskForm):
    adjustment_confirm_limit = MoneyField(
        "Confirm adjustments above", validators=[InputRequired("Enter an amount (0: confirm every adjustment).")],
        description="A credit, debit or balance reset that changes a balance by more than this asks for a "
                    "second confirmation, showing the amount and this limit.")


def _tenant() -> Tenant:
    return db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one()


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    tenant = _tenant()
    form = AdjustmentLimitForm(data={"adjustment_confirm_limit": tenant.adjustment_confirm_limit})
    if request.method == "POST":
        owner_only()
        if form.validate_on_submit():
            try:
                changed = set_adjustment_limit(tenant, form.adjustment_confirm_limit.data)
            except TenantError as e:
                db.session.rollback()
                tenant = _tenant()
                form.adjustment_confirm_limit.errors = list(form.adjustment_confirm_limit.errors) + [str(e)]
            else:
                db.session.commit()
                flash("Settings saved." if changed else "Nothing changed.", "success" if changed else "info")
                return redirect(url_for("reseller.settings"), code=303)
    return render("reseller/settings.html", form=form, tenant=tenant, title="Settings",
                  status=422 if form.errors else 200)
