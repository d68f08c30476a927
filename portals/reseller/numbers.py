"""The reseller's numbers: spare and assigned DIDs, sell prices, assign and release."""
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm, NumberAssignForm, NumberPriceForm, plain_amount
from portals.reseller import bp
from app.numbers import operations as dids
from app.numbers.models import Number
from provisioning.models import Extension
from tenants import Tenant, get_or_404

PAGE = 100


def _own_number(number_id) -> Number:
    """Numbers are managed by the reseller holding them (not by a parent looking at a sub-reseller's)."""
    number = get_or_404(Number, number_id)
    if number.tenant_id != current_user.tenant_id:
        abort(404)
    return number


@bp.get("/numbers")
def numbers():
    status = request.args.get("status", "")
    page = max(request.args.get("page", 1, type=int), 1)
    q = select(Number).where(Number.tenant_id == current_user.tenant_id)
    if status in ("spare", "assigned"):
        q = q.where(Number.status == status)
    total = db.session.scalar(select(func.count()).select_from(q.subquery()))
    rows = db.session.execute(q.order_by(Number.number).offset((page - 1) * PAGE).limit(PAGE)).scalars().all()
    account_ids = {n.account_id for n in rows if n.account_id}
    accounts = {a.id: a for a in db.session.execute(select(Account).where(Account.id.in_(account_ids))).scalars()} \
        if account_ids else {}
    ext_ids = {n.extension_id for n in rows if n.extension_id}
    exts = {e.id: e for e in db.session.execute(select(Extension).where(Extension.id.in_(ext_ids))).scalars()} \
        if ext_ids else {}
    currency = db.session.scalar(select(Tenant.currency).where(Tenant.id == current_user.tenant_id))
    return render("reseller/numbers.html", numbers=rows, accounts=accounts, exts=exts, state=status, page=page,
                  pages=max((total + PAGE - 1) // PAGE, 1), total=total, currency=currency,
                  action_form=ActionForm(formdata=None), plain_amount=plain_amount, title="Numbers")


@bp.post("/numbers/<int:number_id>/price")
def number_price(number_id):
    number = _own_number(number_id)
    form = NumberPriceForm()
    if not form.validate():
        messages = "; ".join(f"{form[k].label.text}: {' '.join(v)}" for k, v in form.errors.items() if k != "csrf_token")
        flash(f"{number.number} not changed. {messages or 'The form expired; reload the page.'}", "error")
        return redirect(url_for("reseller.numbers"), code=303)
    try:
        dids.set_sell_prices(number, form.sell_setup.data, form.sell_monthly.data)
    except FieldError as e:
        db.session.rollback()
        flash(f"{number.number} not changed. {e.message}", "error")
        return redirect(url_for("reseller.numbers"), code=303)
    shown = number.number
    db.session.commit()
    flash(f"Prices of {shown} saved.", "success")
    return redirect(url_for("reseller.numbers", **request.args), code=303)


def _account_choices(tenant_id):
    accounts = db.session.execute(
        select(Account).where(Account.tenant_id == tenant_id, Account.status != "closed").order_by(Account.name)
    ).scalars()
    return [(0, "Choose an account")] + [(a.id, f"{a.display_name} · {a.account_number}") for a in accounts]


@bp.route("/numbers/<int:number_id>/assign", methods=["GET", "POST"])
def number_assign(number_id):
    number = _own_number(number_id)
    if number.status != "spare":
        flash(f"{number.number} is not a spare number.", "error")
        return redirect(url_for("reseller.numbers"), code=303)
    form = NumberAssignForm()
    form.account_id.choices = _account_choices(number.tenant_id)
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate():
            account = db.session.execute(
                select(Account).where(Account.id == form.account_id.data, Account.tenant_id == number.tenant_id)
            ).scalar_one_or_none()
            try:
                if account is None:
                    raise FieldError("account_id", "Choose one of your accounts.")
                ext = None
                wanted = (form.extension_number.data or "").strip()
                if wanted:
                    ext = db.session.execute(
                        select(Extension).where(Extension.account_id == account.id, Extension.number == wanted,
                                                Extension.active.is_(True))
                    ).scalar_one_or_none()
                    if ext is None:
                        raise FieldError("extension_number", f"{account.display_name} has no extension {wanted}.")
                dids.assign(number.id, account, ext, created_by_id=current_user.id)
            except FieldError as e:
                db.session.rollback()
                number = _own_number(number_id)
                form.account_id.choices = _account_choices(number.tenant_id)
                target = e.field if e.field in form._fields else ("account_id" if e.field != "extension_number" else e.field)
                form[target].errors = list(form[target].errors) + [e.message]
            else:
                account_id, shown = account.id, number.number
                db.session.commit()
                flash(f"{shown} assigned.", "success")
                return redirect(url_for("reseller.account_detail", account_id=account_id) + "#numbers", code=303)
    return render("reseller/number_assign.html", status=status, number=number, form=form,
                  currency=dids.reseller_currency(number.tenant_id),
                  title=f"Assign {number.number}")


@bp.post("/numbers/<int:number_id>/release")
def number_release(number_id):
    number = _own_number(number_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    account = None
    if number.account_id:
        account = db.session.execute(select(Account).where(Account.id == number.account_id)).scalar_one_or_none()
    shown = number.number
    try:
        dids.release(number, account)
    except FieldError as e:
        flash(e.message, "error")
        return redirect(url_for("reseller.numbers"), code=303)
    db.session.commit()
    flash(f"{shown} is spare again.", "success")
    return redirect(url_for("reseller.numbers"), code=303)

