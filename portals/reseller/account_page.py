"""The account page (/reseller/accounts/<account_id>) and its actions.

Every route loads the account through tenants.get_or_404 (another tenant's account: 404),
every change is a POST with CSRF, and each handler is thin: load, check, call one domain
operation (app.accounts.operations, app.billing.*, provisioning.*), commit once.
Edit forms carry the account's `version`: a stale form is refused and writes nothing.
"""
import uuid
from decimal import Decimal

from flask import abort, flash, redirect, request, session, url_for
from flask_login import current_user, login_user
from sqlalchemy import select

from app import audit, money
from app.calls import live
from app.accounts.operations import (REASON_NEEDED, STALE_MESSAGE, LargeAdjustment, StaleEdit, account_logins,
                                    adjust_balance, adjustment_limit, check_version, close_account,
                                    set_account_status, set_pin, set_portal_password, update_account)
from app.accounts.models import Account
from app.audit import AuditEntry
from app.billing import plans, user_changes
from app.billing.user_changes import ScheduledUserChange
from app.billing.account_templates import save_template, values_from_account
from app.billing.orders import Order, process_order
from app.conflicts import FieldError
from app.extensions import db
from app.invoicing.taxes import account_tax_ids, set_account_taxes
from app.ledger import LedgerEntry
from app.notifications.outbox import low_balance_alert, welcome_letter
from app.web import is_htmx, render
from portals.account_forms import (AccountEditForm, ActionForm, AssignNumberForm, BalanceForm, MoveNumberForm,
                                   NotesForm, PortalPasswordForm, StatusChangeForm, TemplateNameForm, UsersChangeForm,
                                   amount, tax_choices)
from portals.reseller import bp
from portals.reseller.onboarding import rate_sheet_choices
from app.numbers import operations as dids
from app.payments import history as payment_history
from provisioning.models import Extension
from tenants import get_or_404

PAYMENT_KINDS = ("payment", "credit", "refund")


def calls_in_progress(account_number: str) -> int | None:
    """Live calls from the AMI watchers' shared counts; None when not available."""
    from app.calls.in_use import account_in_use

    return account_in_use(account_number)


def extension_calls(sip_username: str) -> int | None:
    try:
        from app.calls.in_use import extension_in_use
    except ImportError:
        return None
    return extension_in_use(sip_username)


def _extensions(account_id: int, active_only=False) -> list[Extension]:
    q = select(Extension).where(Extension.account_id == account_id)
    if active_only:
        q = q.where(Extension.active.is_(True))
    return list(db.session.execute(q.order_by(Extension.number)).scalars())


def _edit_form(account, plan, countries) -> AccountEditForm:
    data = {k: getattr(account, k) for k in (
        "name", "email", "first_name", "last_name", "phone", "company", "address", "city", "state", "postcode",
        "country", "timezone", "language", "currency", "billing_type", "credit_limit", "max_channels", "cps_limit",
        "low_balance_threshold", "email_alerts", "play_insufficient_credit", "invoice_day",
        "vat_number", "expiry_mode", "expiry_date", "expiry_days", "autorefill", "initial_balance", "tax_exempt",
        "tax_exempt_reason")}
    data.update(with_pin=bool(account.pin), version=str(account.version), tax_ids=account_tax_ids(account.id),
                plan_name=plan.name if plan else "", cost_per_user=plan.cost_per_user if plan else Decimal("0"),
                rate_sheet_id=(plan.rate_sheet_id or 0) if plan else 0)
    form = AccountEditForm(formdata=None, data=data)
    for i, c in enumerate(countries):
        if i < len(form.countries.entries):
            form.countries.entries[i].country.data, form.countries.entries[i].minutes.data = c.country, c.minutes
        else:
            form.countries.append_entry({"country": c.country, "minutes": c.minutes})
    form.countries.append_entry()
    return form


PLAN_FIELDS = ("plan_name", "cost_per_user", "rate_sheet_id", "countries")


def _choices(form, account, plan=None):
    """Fill the choices; an account without a service plan (made outside the wizard) edits
    its account fields only."""
    if plan is None and plans.plan_of(account.id) is None:
        for name in PLAN_FIELDS:
            if name in form._fields:
                delattr(form, name)
    if "rate_sheet_id" in form._fields:
        form.rate_sheet_id.choices = rate_sheet_choices(account.tenant_id)
    tax_choices(form, account.tenant_id)
    for name, value in (("timezone", account.timezone), ("language", account.language),
                        ("currency", account.currency)):
        choices = list(form[name].choices)
        if value and value not in {c[0] for c in choices}:
            form[name].choices = choices + [(value, value)]
    return form


def _assign_form(account, exts, form=None) -> AssignNumberForm:
    form = form or AssignNumberForm(formdata=None)
    currency = dids.reseller_currency(account.tenant_id)   # sell prices are in the reseller's currency
    form.number_id.choices = [(0, "Choose a number")] + [
        (n.id, f"{n.display} · setup {money.format_money(n.sell_setup, currency)} · "
               f"{money.format_money(n.sell_monthly, currency)}/month")
        for n in dids.spare_numbers(account.tenant_id)]
    form.extension_id.choices = [(0, "No extension")] + [(e.id, e.number) for e in exts if e.active]
    return form


def _page(account: Account, *, status=200, message=None, quote=None, users_message=None, users_notice=None,
          **forms):
    plan = plans.plan_of(account.id)
    countries = plans.countries_of(plan)
    exts = _extensions(account.id)
    numbers = dids.numbers_of_account(account.id)
    ext_by_id = {e.id: e for e in exts}
    forms.setdefault("edit_form", _edit_form(account, plan, countries))
    _choices(forms["edit_form"], account, plan)
    forms.setdefault("notes_form", NotesForm(formdata=None, notes=account.notes, version=str(account.version)))
    forms.setdefault("balance_form", BalanceForm(formdata=None, nonce=uuid.uuid4().hex))
    forms.setdefault("password_form", PortalPasswordForm(formdata=None))
    forms.setdefault("template_form", TemplateNameForm(formdata=None))
    forms.setdefault("users_form", UsersChangeForm(formdata=None, users=plan.users if plan else 1))
    forms["assign_form"] = _assign_form(account, exts, forms.get("assign_form"))
    move_form = MoveNumberForm(formdata=None)
    move_form.extension_id.choices = [(0, "No extension")] + [(e.id, e.number) for e in exts if e.active]
    shown = session.pop("new_portal_password", None)
    new_password = shown["password"] if shown and shown.get("account_id") == account.id else None
    payments = [(p, account) for p in payment_history.of_account(account.id, limit=20)]
    entries = db.session.execute(
        select(LedgerEntry).where(LedgerEntry.account_id == account.id)
        .order_by(LedgerEntry.id.desc()).limit(20)).scalars().all()
    history = db.session.execute(
        select(AuditEntry).where(AuditEntry.account_id == account.id)
        .order_by(AuditEntry.id.desc()).limit(50)).scalars().all()
    orders = db.session.execute(
        select(Order).where(Order.account_id == account.id).order_by(Order.id.desc()).limit(50)).scalars().all()
    return render("reseller/account_detail.html", status=status, account=account, plan=plan, countries=countries,
                  extensions=exts, numbers=numbers, ext_by_id=ext_by_id, payments=payments, entries=entries,
                  history=history, orders=orders, logins=account_logins(account.id),
                  in_use=calls_in_progress(account.account_number), extension_calls=extension_calls,
                  new_password=new_password,
                  quote=quote, message=message, move_form=move_form, action_form=ActionForm(formdata=None),
                  waiting=user_changes.waiting(account, plan), users_message=users_message, users_notice=users_notice,
                  leaving=user_changes.leaving_extensions(account, quote.removed) if quote else [],
                  decrease_at_once=plans.decreases_at_once(account.tenant_id),
                  adjustment_limit=adjustment_limit(account.tenant_id),
                  title=account.display_name, **forms)


def _back(account_id, anchor=""):
    return redirect(url_for("reseller.account_detail", account_id=account_id) + anchor, code=303)


def _require_post_form(form):
    if not form.validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")


def _attach(form, e: FieldError) -> bool:
    """Show a domain refusal next to its field; False if the form has no such field."""
    if e.field and e.field in form._fields:
        form[e.field].errors = list(form[e.field].errors) + [e.message]
        return True
    return False


@bp.get("/accounts/<int:account_id>")
def account_detail(account_id):
    return _page(get_or_404(Account, account_id))


@bp.post("/accounts/<int:account_id>/edit")
def account_edit(account_id):
    account = get_or_404(Account, account_id)
    form = _choices(AccountEditForm(), account)
    if not form.validate():
        return _page(account, status=422, edit_form=form)
    try:
        check_version(account, form.version.data)
        plan = plans.plan_of(account.id)
        plan_changes = {}
        if plan is not None and "plan_name" in form._fields:
            plan_changes = plans.update_plan(plan, name=form.plan_name.data, cost_per_user=amount(form.cost_per_user),
                                             rate_sheet_id=form.rate_sheet_id.data or None,
                                             countries=form.countries_data(), currency=form.currency.data)
        set_pin(account, form.with_pin.data)
        values = {name: form[name].data for name in (
            "name", "email", "first_name", "last_name", "company", "address", "city", "state", "postcode",
            "country", "timezone", "language", "currency", "billing_type", "max_channels", "cps_limit",
            "email_alerts", "play_insufficient_credit", "invoice_day", "vat_number", "expiry_mode", "autorefill")}
        values.update(
            phone=form.phone_e164, credit_limit=amount(form.credit_limit),
            low_balance_threshold=amount(form.low_balance_threshold),
            initial_balance=amount(form.initial_balance),
            expiry_date=form.expiry_date.data if form.expiry_mode.data == "date" else None,
            expiry_days=form.expiry_days.data if form.expiry_mode.data.startswith("days_") else None)
        for key in ("company", "address", "city", "state", "postcode", "vat_number"):
            values[key] = (values[key] or "").strip()
        changes = update_account(account, version=form.version.data, values=values, extra_changes=plan_changes)
        changes.update(set_account_taxes(account, form.tax_ids.data or [], exempt=form.tax_exempt.data,
                                         reason=form.tax_exempt_reason.data or ""))
    except StaleEdit:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        return _page(account, status=409, edit_form=form, message=STALE_MESSAGE)
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        if not _attach(form, e):
            return _page(account, status=409, edit_form=form, message=e.message)
        return _page(account, status=422, edit_form=form)
    live.announce(account.account_number)
    db.session.commit()
    flash("Account saved." if changes else "Nothing to change.", "success")
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/notes")
def account_notes(account_id):
    account = get_or_404(Account, account_id)
    form = NotesForm()
    if not form.validate():
        return _page(account, status=422, notes_form=form)
    try:
        update_account(account, version=form.version.data, values={"notes": form.notes.data or ""})
    except StaleEdit:
        db.session.rollback()
        return _page(get_or_404(Account, account_id), status=409, notes_form=form, message=STALE_MESSAGE)
    except FieldError as e:
        db.session.rollback()
        return _page(get_or_404(Account, account_id), status=409, notes_form=form, message=e.message)
    db.session.commit()
    flash("Notes saved.", "success")
    return _back(account_id, "#account-notes")


# What the confirmation page says of each action that takes service away.
STATUS_CONFIRM = {
    "suspend": ("Suspend", "New calls are refused and calls in progress are cut off at once. Enable the "
                           "account again to give service back."),
    "disable": ("Disable", "New calls are refused and calls in progress are cut off at once. Enable the "
                           "account again to give service back."),
    "close": ("Delete", "Deleting closes the account for good: it is refused while the balance is not zero or "
                        "calls are in progress. Its numbers return to your spare numbers, its extensions stop "
                        "registering, its portal login is disabled; its records stay for invoices."),
}


def _status_form() -> StatusChangeForm:
    """The posted status form; a missing or expired CSRF token is a 400, any other error is
    shown on the confirmation page."""
    form = StatusChangeForm()
    if not form.validate_on_submit() and "csrf_token" in form.errors:
        abort(400, description="The form expired; reload the page and try again.")
    return form


def _confirm_status(account, action, form, status=200, message=None):
    verb, consequence = STATUS_CONFIRM[action]
    url = url_for("reseller.account_delete" if action == "close" else "reseller.account_status", account_id=account.id)
    form.action.data, form.confirm.data = action, "1"
    return render("reseller/account_confirm.html", status=status, account=account, form=form, action=action,
                  verb=verb, consequence=consequence, post_url=url, message=message,
                  title=f"{verb} {account.display_name}?")


@bp.post("/accounts/<int:account_id>/status")
def account_status(account_id):
    """Enable at once; suspend and disable show a confirmation page first, which asks why."""
    account = get_or_404(Account, account_id)
    form = _status_form()
    action = form.action.data or ""
    if action in REASON_NEEDED and (not form.confirmed or form.errors):
        return _confirm_status(account, action, form, status=422 if form.errors else 200)
    try:
        new = set_account_status(account, action, reason=form.reason.data)
    except (FieldError, StaleEdit) as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        if isinstance(e, FieldError) and e.field == "reason" and action in REASON_NEEDED:
            form.reason.errors = list(form.reason.errors) + [e.message]
            return _confirm_status(account, action, form, status=422)
        flash(str(e), "error")
        return _back(account_id)
    live.announce(account.account_number)
    db.session.commit()
    flash(f"The account is now {new}.", "success")
    return _back(account_id)


def _confirm_adjustment(account, form, e: LargeAdjustment):
    form.confirm_large.data = "1"
    return render("reseller/adjustment_confirm.html", account=account, form=form, large=e,
                  title=f"Confirm a large adjustment of {account.display_name}")


@bp.post("/accounts/<int:account_id>/balance")
def account_balance(account_id):
    account = get_or_404(Account, account_id)
    form = BalanceForm()
    if not form.validate():
        return _page(account, status=422, balance_form=form)
    try:
        posted = adjust_balance(account, form.action.data, form.amount.data, form.reason.data,
                                nonce=form.nonce.data or uuid.uuid4().hex, created_by_id=current_user.id,
                                confirm_large=form.confirm_large.data == "1")
    except LargeAdjustment as e:
        db.session.rollback()       # nothing was written; the row lock of a reset is let go
        form.nonce.data = form.nonce.data or uuid.uuid4().hex
        return _confirm_adjustment(get_or_404(Account, account_id), form, e)
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        if not _attach(form, e):
            return _page(account, status=409, balance_form=form, message=e.message)
        return _page(account, status=422, balance_form=form)
    number, currency = account.account_number, account.currency
    live.announce(number)
    db.session.commit()
    if posted.created:
        flash(f"Balance is now {money.format_money(posted.balance_after, currency)}.", "success")
    else:
        flash("This adjustment was already recorded (the form was sent twice); nothing changed.", "info")
    return _back(account_id, "#balance")


@bp.post("/accounts/<int:account_id>/delete")
def account_delete(account_id):
    """Delete = close, after a confirmation page that asks why."""
    account = get_or_404(Account, account_id)
    form = _status_form()
    if not form.confirmed or form.errors:
        return _confirm_status(account, "close", form, status=422 if form.errors else 200)
    try:
        released = close_account(account, calls_in_progress=calls_in_progress(account.account_number) or 0,
                                 reason=form.reason.data)
    except (FieldError, StaleEdit) as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        if isinstance(e, FieldError) and e.field == "reason":
            form.reason.errors = list(form.reason.errors) + [e.message]
            return _confirm_status(account, "close", form, status=422)
        flash(f"Not deleted: {e}", "error")
        return _back(account_id)
    live.announce(account.account_number)
    db.session.commit()
    flash(f"Account closed; {released} number(s) returned to your spare numbers. Its records are kept.", "success")
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/welcome")
def account_welcome(account_id):
    account = get_or_404(Account, account_id)
    _require_post_form(ActionForm())
    if account.status == "closed":
        flash("This account is closed.", "error")
        return _back(account_id)
    logins = account_logins(account.id)
    welcome_letter(account, login_email=logins[0].email if logins else None)
    db.session.commit()
    flash(f"Welcome letter queued for {account.email}.", "success")
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/low-balance-alert")
def account_low_balance_alert(account_id):
    account = get_or_404(Account, account_id)
    _require_post_form(ActionForm())
    low_balance_alert(account)
    db.session.commit()
    flash(f"Low-balance alert queued for {account.email}.", "success")
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/password")
def account_password(account_id):
    account = get_or_404(Account, account_id)
    form = PortalPasswordForm()
    if not form.validate():
        return _page(account, status=422, password_form=form)
    try:
        user = set_portal_password(account, form.password.data)
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        if not _attach(form, e):
            return _page(account, status=409, password_form=form, message=e.message)
        return _page(account, status=422, password_form=form)
    email = user.email
    db.session.commit()
    flash(f"Portal password of {email} changed; the account was told by email.", "success")
    return _back(account_id)


@bp.post("/accounts/<int:account_id>/template")
def account_save_template(account_id):
    account = get_or_404(Account, account_id)
    form = TemplateNameForm()
    if not form.validate():
        return _page(account, status=422, template_form=form)
    plan = plans.plan_of(account.id)
    try:
        tpl = save_template(current_user.tenant_id, form.template_name.data,
                            values_from_account(account, plan, plans.countries_of(plan)))
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        form.template_name.errors = list(form.template_name.errors) + [e.message]
        return _page(account, status=422, template_form=form)
    name, tpl_id = tpl.name, tpl.id
    db.session.commit()
    flash(f"Template “{name}” saved.", "success")
    return redirect(url_for("reseller.account_new", template_id=tpl_id), code=303) \
        if request.form.get("then") == "new" else _back(account_id)


@bp.post("/accounts/<int:account_id>/impersonate")
def account_impersonate(account_id):
    account = get_or_404(Account, account_id)
    _require_post_form(ActionForm())
    if account.status == "closed":
        flash("This account is closed.", "error")
        return _back(account_id)
    target = next((u for u in account_logins(account.id) if u.active), None)
    if target is None:
        flash("This account has no portal login yet: set a portal password first.", "error")
        return _back(account_id)
    me_id, target_id = current_user.id, target.id
    audit.record("account.impersonation_started", account, login=target.email)
    db.session.commit()
    session.clear()
    login_user(target)
    session["impersonator_id"] = me_id
    session["impersonated_account_id"] = account_id
    session["impersonated_login_id"] = target_id
    return redirect(url_for("customer.dashboard"), code=303)


# --- users ---------------------------------------------------------------------------------

def _plan_or_404(account):
    plan = plans.plan_of(account.id)
    if plan is None:
        abort(404, description="This account has no service plan.")
    return plan


@bp.post("/accounts/<int:account_id>/users/preview")
def account_users_preview(account_id):
    account = get_or_404(Account, account_id)
    plan = _plan_or_404(account)
    form = UsersChangeForm()
    if not form.validate():
        return _page(account, status=422, users_form=form)
    try:
        quote = plans.quote_user_change(account, plan, form.users.data)
    except FieldError as e:
        _attach(form, e)
        return _page(account, status=422, users_form=form)
    return _page(account, users_form=form, quote=quote)


def user_change_done(quote, currency: str) -> str:
    """What an accepted change did, in one sentence (both portals)."""
    if quote.scheduled:
        return (f"Scheduled: {quote.current} → {quote.new} users from {quote.effective_on.isoformat()}, the start of "
                "the next billing period. Until then every user keeps working; the change can be cancelled.")
    done = f"Users changed from {quote.current} to {quote.new}."
    if quote.charge_now:
        done += f" Charged {money.format_money(quote.charge_now, currency)}."
    if quote.credit_now:
        done += f" Credited {money.format_money(quote.credit_now, currency)}."
    return done


@bp.post("/accounts/<int:account_id>/users/apply")
def account_users_apply(account_id):
    account = get_or_404(Account, account_id)
    plan = _plan_or_404(account)
    form = UsersChangeForm()
    if not form.validate():
        return _page(account, status=422, users_form=form)
    accepted_from, accepted_charge, accepted_when = form.accepted_quote()
    try:
        quote = plans.apply_user_change(account, plan, form.users.data, accepted_from=accepted_from,
                                        accepted_charge=accepted_charge, accepted_when=accepted_when,
                                        created_by_id=current_user.id)
    except plans.QuoteChanged as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        return _page(account, status=409, users_form=form, quote=e.quote, message=e.message)
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        _attach(form, e)
        return _page(account, status=422, users_form=form, message=None if e.field else e.message)
    currency = account.currency
    live.announce(account.account_number)
    db.session.commit()
    flash(user_change_done(quote, currency), "success")
    return _back(account_id, "#extensions")


@bp.post("/accounts/<int:account_id>/users/scheduled/<int:user_change_id>/cancel")
def account_users_cancel(account_id, user_change_id):
    """Cancel a scheduled decrease: the account keeps its users. htmx swaps the users section."""
    account = get_or_404(Account, account_id)
    change = get_or_404(ScheduledUserChange, user_change_id)
    if change.account_id != account.id:
        abort(404)
    _require_post_form(ActionForm())
    try:
        user_changes.cancel(account, change, by_id=current_user.id)
    except FieldError as e:
        db.session.rollback()
        if is_htmx():
            return _page(get_or_404(Account, account_id), status=409, users_message=e.message)
        flash(e.message, "error")
        return _back(account_id, "#extensions")
    done = (f"The change to {change.to_users} users is cancelled: the account keeps its {change.from_users} users.")
    db.session.commit()
    if is_htmx():
        return _page(get_or_404(Account, account_id), users_notice=done)
    flash(done, "success")
    return _back(account_id, "#extensions")


# --- numbers on the account -----------------------------------------------------------------

def _extension_of(account, extension_id):
    if not extension_id:
        return None
    ext = db.session.execute(
        select(Extension).where(Extension.id == extension_id, Extension.account_id == account.id,
                                Extension.active.is_(True))
    ).scalar_one_or_none()
    if ext is None:
        raise FieldError("extension_id", "Choose an extension of this account.")
    return ext


def _number_of(account, number_id) -> dids.Number:
    number = get_or_404(dids.Number, number_id)
    if number.account_id != account.id:
        abort(404)
    return number


@bp.post("/accounts/<int:account_id>/numbers")
def account_number_assign(account_id):
    account = get_or_404(Account, account_id)
    form = _assign_form(account, _extensions(account.id), AssignNumberForm())
    if not form.validate():
        return _page(account, status=422, assign_form=form)
    try:
        ext = _extension_of(account, form.extension_id.data)
        number = dids.assign(form.number_id.data, account, ext, created_by_id=current_user.id)
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        form = _assign_form(account, _extensions(account.id), AssignNumberForm())
        form.validate()
        _attach(form, e) or flash(e.message, "error")
        return _page(account, status=422, assign_form=form)
    shown = number.number
    live.announce(account.account_number)
    db.session.commit()
    flash(f"{shown} assigned.", "success")
    return _back(account_id, "#numbers")


@bp.post("/accounts/<int:account_id>/numbers/<int:number_id>/extension")
def account_number_move(account_id, number_id):
    account = get_or_404(Account, account_id)
    number = _number_of(account, number_id)
    form = MoveNumberForm()
    _require_post_form(form)
    try:
        dids.move(number, account, _extension_of(account, form.extension_id.data))
    except FieldError as e:
        db.session.rollback()
        flash(e.message, "error")
        return _back(account_id, "#numbers")
    db.session.commit()
    flash("Number moved.", "success")
    return _back(account_id, "#numbers")


@bp.post("/accounts/<int:account_id>/numbers/<int:number_id>/release")
def account_number_release(account_id, number_id):
    account = get_or_404(Account, account_id)
    number = _number_of(account, number_id)
    _require_post_form(ActionForm())
    shown = number.number
    try:
        dids.release(number, account)
    except FieldError as e:
        db.session.rollback()
        flash(e.message, "error")
        return _back(account_id, "#numbers")
    db.session.commit()
    flash(f"{shown} released to your spare numbers.", "success")
    return _back(account_id, "#numbers")


@bp.post("/accounts/<int:account_id>/orders/<int:order_id>/process")
def account_order_process(account_id, order_id):
    account = get_or_404(Account, account_id)
    order = get_or_404(Order, order_id)
    if order.account_id != account.id:
        abort(404)
    _require_post_form(ActionForm())
    try:
        process_order(order)
    except FieldError as e:
        flash(e.message, "error")
        return _back(account_id, "#orders")
    db.session.commit()
    flash("Order marked as processed.", "success")
    return _back(account_id, "#orders")
