"""Reseller portal: an account's owner, agent, extra contact details and group (seeds 000/001),
the reseller's customer groups, and the agent commission report.

GET/POST /reseller/accounts/<account_id>/profile   the section on the account page (htmx)
GET/POST /reseller/groups                          customer groups
GET      /reseller/reports/commission              ?agent&from&to: commission per agent and period
"""
from decimal import Decimal, InvalidOperation

from flask import flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from app.accounts import details as acct_details
from app.accounts.models import Account
from app.extensions import db
from app.logins.models import User
from app.web import render
from portals.reports import date_range
from portals.reseller import bp
from tenants import Tenant, get_or_404


class ProfileForm(FlaskForm):
    agent_id = SelectField("Agent", coerce=int, validate_choice=False)
    agent_commission_rate = StringField("Agent commission (%)", default="0")
    group_id = SelectField("Customer group", coerce=int, validate_choice=False)
    website = StringField("Website", validators=[Optional(), Length(max=255)])
    phone2 = StringField("Second phone", validators=[Optional(), Length(max=32)])
    fax = StringField("Fax", validators=[Optional(), Length(max=32)])
    low_balance_email = EmailField("Low-credit notices to", validators=[Optional(), Email()],
                                   description="Blank: the account's email.")
    report_schedule = SelectField("Automatic usage report", choices=[
        ("off", "Off"), ("daily", "Daily (yesterday)"), ("weekly", "Weekly (Monday to Sunday)"),
        ("monthly", "Monthly (last month)")], default="off", validate_choice=False,
        description="Calls, minutes, charges and balance with the calls as CSV, emailed to you.")
    report_to_customer = BooleanField("Send the report to the customer too")
    alert_schedule = SelectField("Balance and expiry alerts", choices=[
        ("once", "Once when it happens"), ("hourly", "Then every hour while it lasts"),
        ("daily", "Then every day while it lasts")], default="once", validate_choice=False,
        description="Low balance, zero balance and expiry soon; only when the account's email alerts are on.")
    alert_stop_days = IntegerField("Stop repeating after (days)", default=0, validators=[Optional()],
                                   description="0: keep repeating while it lasts.")
    signin_notification = BooleanField("Email the customer at each portal sign-in")


class GroupForm(FlaskForm):
    name = StringField("Group name", validators=[DataRequired("Give the group a name."), Length(max=80)])


def _profile(account, form=None, status=200):
    row = acct_details.details_of(account.id)
    if form is None:
        form = ProfileForm(formdata=None, obj=row)
        form.agent_id.data = row.agent_id or 0
        form.group_id.data = row.group_id or 0
        form.agent_commission_rate.data = f"{row.agent_commission_rate.normalize():f}"
    form.agent_id.choices = [(0, "No agent")] + [(u.id, u.name or u.email) for u in acct_details.agents_of(account.tenant_id)]
    form.group_id.choices = [(0, "No group")] + [(g.id, g.name) for g in acct_details.groups_of(account.tenant_id)]
    owner = db.session.execute(select(Tenant).where(Tenant.id == account.tenant_id)).scalar_one()
    return render("reseller/_account_profile.html", account=account, owner=owner, form=form, status=status)


@bp.route("/accounts/<int:account_id>/profile", methods=["GET", "POST"])
def account_profile(account_id):
    account = get_or_404(Account, account_id)
    if request.method == "GET":
        return _profile(account)
    form = ProfileForm()
    if form.validate_on_submit():
        try:
            rate = Decimal((form.agent_commission_rate.data or "0").strip().rstrip("%") or "0")
        except InvalidOperation:
            form.agent_commission_rate.errors.append("Enter a percentage such as 5 or 7.5.")
            return _profile(account, form, 422)
        try:
            acct_details.save_details(account.id, website=form.website.data or "", fax=form.fax.data or "",
                                      phone2=form.phone2.data or "",
                                      low_balance_email=form.low_balance_email.data or "",
                                      agent_id=form.agent_id.data or None, agent_commission_rate=rate,
                                      group_id=form.group_id.data or None,
                                      report_schedule=form.report_schedule.data,
                                      report_to_customer=form.report_to_customer.data,
                                      alert_schedule=form.alert_schedule.data,
                                      alert_stop_days=form.alert_stop_days.data or 0,
                                      signin_notification=form.signin_notification.data)
        except acct_details.DetailsError as e:
            db.session.rollback()
            account = get_or_404(Account, account_id)
            getattr(form, e.field).errors.append(str(e))
            return _profile(account, form, 422)
        db.session.commit()
        flash("Owner, agent and contact details saved.", "success")
        return redirect(url_for("reseller.account_detail", account_id=account.id) + "#profile", code=303)
    return _profile(account, form, 422)


@bp.route("/groups", methods=["GET", "POST"])
def customer_groups():
    form = GroupForm()
    if form.validate_on_submit():
        try:
            acct_details.create_group(current_user.tenant_id, form.name.data)
        except acct_details.DetailsError as e:
            db.session.rollback()
            form.name.errors.append(str(e))
        else:
            db.session.commit()
            flash(f"Group {form.name.data.strip()} added.", "success")
            return redirect(url_for("reseller.customer_groups"), code=303)
    groups = acct_details.groups_of(current_user.tenant_id)
    counts = {g.id: len(acct_details.account_ids_in_group(g.id)) for g in groups}
    return render("reseller/groups.html", form=form, groups=groups, counts=counts, title="Customer groups",
                  status=422 if form.errors else 200)


@bp.get("/reports/commission")
def commission_report():
    rng, errors, shown = date_range(request.args)
    agents = acct_details.agents_of(current_user.tenant_id)
    try:
        agent_id = int(request.args.get("agent") or 0)
    except ValueError:
        agent_id = 0
    agent = next((a for a in agents if a.id == agent_id), None)
    rows = acct_details.commission_report(agent.id, rng.start, rng.end) if agent and not errors else []
    return render("reseller/commission.html", agents=agents, agent=agent, rows=rows, rng=rng, errors=errors,
                  shown=shown, title="Agent commission", status=422 if errors else 200)
