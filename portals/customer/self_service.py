"""Customer portal: users (with the prorated charge shown before it is taken), numbers,
service plan, password, and the way back for a reseller logged in on the customer's behalf.

The scope of an account administrator is exactly their account (tenants/scope.py), and an
impersonating reseller is logged in as that administrator, so it sees no more than they do.
Numbers are tenant-owned rows (a spare number has no account), so their queries here also
filter by the account explicitly.
"""
from datetime import datetime, timezone

from flask import abort, flash, redirect, session, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from app import audit, money
from app.calls import live
from app.logins.operations import tenant_chain_active
from app.billing import plans, user_changes
from app.billing.user_changes import ScheduledUserChange
from app.billing.orders import Order, record_order
from app.conflicts import FieldError
from app.extensions import db
from app.notifications.outbox import password_changed
from app.logins.models import User
from app.web import is_htmx, render
from portals.account_forms import COUNTRY_NAMES, ChangeOwnPasswordForm, NumberRequestForm, UsersChangeForm
from portals.customer import bp
from portals.customer.routes import my_account
from app.numbers import operations as dids
from provisioning.models import Extension
from tenants import get_or_404
from tenants.scope import subtree_ids


def _users_page(*, status=200, form=None, quote=None, message=None, notice=None):
    account = my_account()
    plan = plans.plan_of(account.id)
    exts = list(db.session.execute(
        select(Extension).where(Extension.account_id == account.id, Extension.active.is_(True))
        .order_by(Extension.number)).scalars())
    numbers = dids.numbers_of_account(account.id)
    form = form or UsersChangeForm(formdata=None, users=plan.users if plan else 1)
    return render("customer/users.html", status=status, account=account, plan=plan, extensions=exts,
                  numbers=numbers, form=form, quote=quote, message=message, notice=notice,
                  waiting=user_changes.waiting(account, plan),
                  leaving=user_changes.leaving_extensions(account, quote.removed) if quote else [],
                  decrease_at_once=plans.decreases_at_once(account.tenant_id), title="Users")


@bp.get("/users")
def users():
    return _users_page()


@bp.post("/users/preview")
def users_preview():
    account = my_account()
    plan = plans.plan_of(account.id)
    form = UsersChangeForm()
    if plan is None:
        abort(404, description="Your account has no service plan.")
    if not form.validate():
        return _users_page(status=422, form=form)
    try:
        quote = plans.quote_user_change(account, plan, form.users.data)
    except FieldError as e:
        form.users.errors = list(form.users.errors) + [e.message]
        return _users_page(status=422, form=form)
    return _users_page(form=form, quote=quote)


@bp.post("/users/apply")
def users_apply():
    account = my_account()
    plan = plans.plan_of(account.id)
    if plan is None:
        abort(404, description="Your account has no service plan.")
    form = UsersChangeForm()
    if not form.validate():
        return _users_page(status=422, form=form)
    accepted_from, accepted_charge, accepted_when = form.accepted_quote()
    try:
        quote = plans.apply_user_change(account, plan, form.users.data, accepted_from=accepted_from,
                                        accepted_charge=accepted_charge, accepted_when=accepted_when,
                                        created_by_id=current_user.id)
    except plans.QuoteChanged as e:
        db.session.rollback()
        return _users_page(status=409, form=form, quote=e.quote, message=e.message)
    except FieldError as e:
        db.session.rollback()
        form.users.errors = list(form.users.errors) + [e.message]
        return _users_page(status=422, form=form)
    currency = account.currency
    live.announce(account.account_number)
    db.session.commit()
    if quote.scheduled:
        flash(f"Scheduled: you will have {quote.new} user{'s' if quote.new != 1 else ''} from "
              f"{quote.effective_on.isoformat()}, the start of your next billing period. Until then all "
              f"{quote.current} users keep working. You can cancel the change until then.", "success")
    else:
        flash(f"You now have {quote.new} user{'s' if quote.new != 1 else ''}."
              + (f" Charged {money.format_money(quote.charge_now, currency)}." if quote.charge_now else "")
              + (f" Credited {money.format_money(quote.credit_now, currency)}." if quote.credit_now else ""),
              "success")
    return redirect(url_for("customer.users"), code=303)


@bp.post("/users/scheduled/<int:user_change_id>/cancel")
def users_cancel(user_change_id):
    """Cancel the scheduled decrease: the account keeps its users. htmx swaps the page."""
    account = my_account()
    change = get_or_404(ScheduledUserChange, user_change_id)
    if change.account_id != account.id:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    try:
        user_changes.cancel(account, change, by_id=current_user.id)
    except FieldError as e:
        db.session.rollback()
        if is_htmx():
            return _users_page(status=409, message=e.message)
        flash(e.message, "error")
        return redirect(url_for("customer.users"), code=303)
    done = f"The change to {change.to_users} users is cancelled: you keep your {change.from_users} users."
    db.session.commit()
    if is_htmx():
        return _users_page(notice=done)
    flash(done, "success")
    return redirect(url_for("customer.users"), code=303)


@bp.route("/numbers", methods=["GET", "POST"])
def numbers():
    account = my_account()
    form = NumberRequestForm()
    status = 200
    if form.validate_on_submit():
        if account.status == "closed":
            abort(403, description="This account is closed.")
        country = COUNTRY_NAMES.get(form.country.data, form.country.data)
        record_order(account, "number", f"Number requested in {country}" + (f": {form.note.data}" if form.note.data else ""),
                     status="pending", country=form.country.data, note=form.note.data)
        db.session.commit()
        flash("Your request is sent to your provider.", "success")
        return redirect(url_for("customer.numbers"), code=303)
    if form.errors:
        status = 422
    exts = {e.id: e for e in db.session.execute(select(Extension).where(Extension.account_id == account.id)).scalars()}
    orders = db.session.execute(
        select(Order).where(Order.account_id == account.id, Order.kind == "number").order_by(Order.id.desc()).limit(20)
    ).scalars().all()
    return render("customer/numbers.html", status=status, account=account, numbers=dids.numbers_of_account(account.id),
                  exts=exts, form=form, orders=orders, title="Numbers")


@bp.get("/plan")
def plan():
    account = my_account()
    p = plans.plan_of(account.id)
    numbers = dids.numbers_of_account(account.id)
    users_monthly = money.quantize((p.cost_per_user * p.users) if p else 0, account.currency)
    numbers_monthly = money.quantize(sum((n.sell_monthly for n in numbers), 0), account.currency)
    rate_sheet = None
    if p and p.rate_sheet_id:
        from app.rating.models import RateSheet
        rate_sheet = db.session.execute(select(RateSheet).where(RateSheet.id == p.rate_sheet_id)).scalar_one_or_none()
    period = datetime.now(timezone.utc).date().replace(day=1)   # bundles count by the calls' UTC month
    return render("customer/plan.html", account=account, plan=p, countries=plans.bundle_minutes(account.id, period),
                  period=period, numbers=numbers,
                  users_monthly=users_monthly, numbers_monthly=numbers_monthly,
                  total_monthly=users_monthly + numbers_monthly, rate_sheet=rate_sheet,
                  country_names=COUNTRY_NAMES, title="Service plan")


@bp.route("/password", methods=["GET", "POST"])
def password():
    account = my_account()
    form = ChangeOwnPasswordForm()
    status = 200
    if form.validate_on_submit():
        user = db.session.execute(select(User).where(User.id == current_user.id)).scalar_one()
        if not user.check_password(form.current.data):
            form.current.errors.append("This is not your current password.")
        else:
            user.set_password(form.password.data)
            audit.record("login.password_changed", user, account_id=account.id)
            password_changed(account, user.email)
            db.session.commit()
            flash("Your password is changed. We sent a note to the account's email.", "success")
            return redirect(url_for("customer.dashboard"), code=303)
    if form.errors:
        status = 422
    return render("customer/password.html", status=status, form=form, account=account, title="Password")


@bp.post("/impersonation/end")
def impersonation_end():
    """Back to the reseller portal, as the reseller login that started the impersonation."""
    if not FlaskForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    impersonator_id = session.get("impersonator_id")
    if not impersonator_id:
        abort(404)
    account_id = current_user.account_id
    account = my_account()
    audit.record("account.impersonation_ended", account)
    db.session.commit()
    reseller = db.session.execute(
        select(User).where(User.id == int(impersonator_id)).execution_options(all_tenants=True)
    ).scalar_one_or_none()
    # The reseller must still be allowed to see this account.
    allowed = (reseller is not None and reseller.active and reseller.role in ("reseller_owner", "reseller_staff")
               and tenant_chain_active(reseller.tenant_id)
               and account.tenant_id in subtree_ids(db.session, reseller.tenant_id))
    session.clear()
    if not allowed:
        flash("Logged out of the customer portal.", "info")
        return redirect(url_for("reseller.login"), code=303)
    login_user(reseller)
    return redirect(url_for("reseller.account_detail", account_id=account_id), code=303)
