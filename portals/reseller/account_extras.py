"""Reseller portal: an account's extras (recurring charges of its own, seed 000) and what it owes.

GET/POST /reseller/accounts/<account_id>/extras                   the section (htmx) / add an extra
POST     /reseller/accounts/<account_id>/extras/<extra_id>/end    stop an extra after a date
Thin: load through the tenant scope, validate, one domain operation (app/billing/extras.py),
commit once. A refused form shows its message next to the field and writes nothing.
"""
from datetime import date

from flask import flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.accounts.models import Account
from app.billing import extras as extras_ops
from app.billing.cycle import owed_charges
from app.billing.schedule import local_date
from app.conflicts import FieldError
from app.extensions import db
from app.web import render
from portals.account_forms import MoneyField
from portals.reseller import bp
from tenants import get_or_404

PERIOD_CHOICES = [(p, p.capitalize()) for p in extras_ops.PERIODS]


class ExtraForm(FlaskForm):
    description = StringField("Description", validators=[DataRequired("Say what the extra is for."),
                                                         Length(max=120)],
                              description="Shown on the statement, e.g. “Monthly support”.")
    amount = MoneyField("Amount", validators=[InputRequired("Enter the amount charged each period.")])
    period = SelectField("Charged", choices=PERIOD_CHOICES, default="monthly")
    start_date = DateField("From", validators=[DataRequired("Enter the first day it is charged.")])
    end_date = DateField("Until (optional)", validators=[Optional()])


class EndExtraForm(FlaskForm):
    end_date = DateField("Last day charged", validators=[DataRequired("Enter the last day the extra is charged.")])


def _section(account, form=None, status=200, end_errors=None):
    today = local_date(account.timezone)
    if form is None:
        form = ExtraForm(formdata=None, data={"start_date": today, "period": "monthly"})
    return render("reseller/_account_extras.html", account=account, form=form, today=today,
                  extras=extras_ops.extras_of(account.id), owed=owed_charges(account.id),
                  end_errors=end_errors or {}, status=status)


def _done(account_id, message):
    flash(message, "success")
    return redirect(url_for("reseller.account_detail", account_id=account_id) + "#extras", code=303)


@bp.route("/accounts/<int:account_id>/extras", methods=["GET", "POST"])
def account_extras(account_id):
    account = get_or_404(Account, account_id)
    if request.method == "GET":
        return _section(account)
    form = ExtraForm()
    if not form.validate_on_submit():
        return _section(account, form, 422)
    try:
        extra = extras_ops.add_extra(account, description=form.description.data, amount=form.amount.data,
                                     period=form.period.data, start_date=form.start_date.data,
                                     end_date=form.end_date.data, created_by_id=current_user.id)
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        target = form[e.field] if e.field in form._fields else form.description
        target.errors = list(target.errors) + [e.message]
        return _section(account, form, 422)
    description = extra.description
    db.session.commit()
    return _done(account_id, f"Extra “{description}” added.")


@bp.post("/accounts/<int:account_id>/extras/<int:extra_id>/end")
def account_extra_end(account_id, extra_id):
    account = get_or_404(Account, account_id)
    extra = get_or_404(extras_ops.Extra, extra_id)
    form = EndExtraForm()
    error = None
    if not form.validate_on_submit():
        error = next(iter(form.end_date.errors), "Enter the last day the extra is charged.")
    else:
        try:
            extras_ops.end_extra(account, extra, form.end_date.data)
        except FieldError as e:
            db.session.rollback()
            error = e.message
    if error:
        account = get_or_404(Account, account_id)
        return _section(account, status=422, end_errors={extra_id: error})
    description, end = extra.description, extra.end_date
    db.session.commit()
    return _done(account_id, f"Extra “{description}” ends after {end:%Y-%m-%d}.")
