"""Reseller settings (/reseller/settings): what the reseller's owner sets for the whole reseller.
Every reseller login sees them; only the owner changes them (403 on a POST otherwise).

Two small forms on one page, each saved on its own (a POST carries the fields of one form):
- the call charge precision (issue 14, point 1), with what an example call costs at each setting;
- the limit above which a ledger adjustment needs a second confirmation (issue 14, point 5);
- when a lower user count applies: at the next billing period, or at once with a prorated
  credit (issue 16, point 4; app/billing/user_changes.py).
"""
from flask import flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import RadioField, SelectField
from wtforms.validators import InputRequired

from app.extensions import db
from app.money import call_charge_places, format_money_exact, minor_units
from app.rating.cost import Tariff, call_cost
from app.resellers.operations import (CALL_PLACES_CHOICES, TenantError, set_adjustment_limit,
                                      set_call_charge_places, set_user_decrease_immediate)
from app.web import hx_redirect, render
from portals.access import owner_only
from portals.account_forms import MoneyField
from portals.reseller import bp
from tenants import Tenant

PLACES_LABELS = {2: "2 decimal places (0.01)", 3: "3 decimal places (0.001)",
                 4: "4 decimal places (0.0001), as carriers bill"}
# 7 s at 0.005 a minute, per-second billing: a different cost at each setting
EXAMPLE = Tariff("1", "", "example", "0.005")


def _places_or_text(value):
    """Whole numbers as ints; anything else is kept for the operation to refuse clearly."""
    text = str(value).strip()
    return int(text) if text.isdigit() and len(text) < 4 else text


class SettingsForm(FlaskForm):
    call_charge_places = SelectField(
        "Call charge precision", coerce=_places_or_text, validate_choice=False,
        choices=[(p, PLACES_LABELS[p]) for p in CALL_PLACES_CHOICES],
        description="Each call's cost is rounded once to this many decimals; balances and the "
                    "ledger keep them. Payments, credits and number and user charges stay in cents "
                    "(the currency's minor unit).")


class AdjustmentLimitForm(FlaskForm):
    adjustment_confirm_limit = MoneyField(
        "Confirm adjustments above", validators=[InputRequired("Enter an amount (0: confirm every adjustment).")],
        description="A credit, debit or balance reset that changes a balance by more than this asks for a "
                    "second confirmation, showing the amount and this limit.")


class UserDecreaseForm(FlaskForm):
    user_decrease = RadioField(
        "When an account lowers its number of users", default="next_period",
        choices=[("next_period", "At the start of its next billing period (the users are paid to the end of this one)"),
                 ("now", "At once, with a credit for the rest of the current period (prorated by the day)")],
        validators=[InputRequired("Choose when a lower user count applies.")],
        description="For changes made from now on, in your account pages and the customer portal. "
                    "A change already scheduled stays scheduled (it can be cancelled on the account's page).")


def _examples(tenant):
    """What the example call costs at each setting, in the reseller's currency."""
    out = []
    for p in CALL_PLACES_CHOICES:
        places = call_charge_places(p, tenant.currency)
        cost = call_cost(7, EXAMPLE, tenant.currency, places=places)
        out.append((p, places, format_money_exact(cost, tenant.currency)))
    return out


def _decrease_value(tenant) -> str:
    return "now" if tenant.user_decrease_immediate else "next_period"


def _tenant() -> Tenant:
    return db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one()


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    if request.method == "POST":
        owner_only()
    tenant = _tenant()
    form = SettingsForm(data={"call_charge_places": tenant.call_charge_places})
    limit_form = AdjustmentLimitForm(data={"adjustment_confirm_limit": tenant.adjustment_confirm_limit})
    decrease_form = UserDecreaseForm(data={"user_decrease": _decrease_value(tenant)})
    if request.method == "POST" and "user_decrease" in request.form:
        form = SettingsForm(formdata=None, data={"call_charge_places": tenant.call_charge_places})
        limit_form = AdjustmentLimitForm(formdata=None, data={"adjustment_confirm_limit": tenant.adjustment_confirm_limit})
        if decrease_form.validate_on_submit():
            changed = set_user_decrease_immediate(tenant, decrease_form.user_decrease.data == "now")
            db.session.commit()
            flash("Settings saved: fewer users apply " + ("at once, with a prorated credit." if _decrease_value(tenant) == "now"
                                                         else "at the start of the next billing period.")
                  if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("reseller.settings") + "#user-decrease", code=303)
    elif request.method == "POST" and "adjustment_confirm_limit" in request.form:
        form = SettingsForm(formdata=None, data={"call_charge_places": tenant.call_charge_places})
        decrease_form = UserDecreaseForm(formdata=None, data={"user_decrease": _decrease_value(tenant)})
        if limit_form.validate_on_submit():
            try:
                changed = set_adjustment_limit(tenant, limit_form.adjustment_confirm_limit.data)
            except TenantError as e:
                db.session.rollback()
                tenant = _tenant()
                limit_form.adjustment_confirm_limit.errors = list(limit_form.adjustment_confirm_limit.errors) + [str(e)]
            else:
                db.session.commit()
                flash("Settings saved." if changed else "Nothing changed.", "success" if changed else "info")
                return redirect(url_for("reseller.settings"), code=303)
    elif request.method == "POST":
        limit_form = AdjustmentLimitForm(formdata=None, data={"adjustment_confirm_limit": tenant.adjustment_confirm_limit})
        decrease_form = UserDecreaseForm(formdata=None, data={"user_decrease": _decrease_value(tenant)})
        if form.validate_on_submit():
            old = tenant.call_charge_places
            try:
                changed = set_call_charge_places(tenant, form.call_charge_places.data)
            except TenantError as e:
                db.session.rollback()
                tenant = _tenant()
                getattr(form, e.field).errors.append(str(e))
            else:
                db.session.commit()
                if changed:
                    flash(f"Saved: call charge precision {old} → {tenant.call_charge_places} decimal places. "
                          "Calls rated from now on use it; rated calls keep their cost.", "success")
                else:
                    flash("Nothing changed.", "info")
                return hx_redirect(url_for("reseller.settings"))
    status = 422 if request.method == "POST" else 200
    return render("reseller/settings.html", form=form, limit_form=limit_form, decrease_form=decrease_form, tenant=tenant,
                  examples=_examples(tenant), may_edit=current_user.role == "reseller_owner",
                  minor=minor_units(tenant.currency), status=status, title="Settings")
