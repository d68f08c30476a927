"""Reseller portal: dashboard, sub-resellers, staff logins, accounts."""
from flask import flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.accounts.models import Account
from app.extensions import db
from app.settings import get_int
from app.logins.models import User
from app.web import render
from portals.access import owner_only
from portals.forms import LoginCreateForm, ResellerForm, create_login_from, create_reseller_from
from portals.dashboard import overview
from portals.reseller import bp
from tenants import Tenant, get_or_404


@bp.get("/", endpoint="dashboard")
def dashboard():
    # Balances are never added across currencies: one figure per currency (portals/dashboard.py).
    o = overview()
    return render("reseller/dashboard.html", o=o, account_count=sum(m.accounts for m in o["money"]),
                  account_url=lambda a: url_for("reseller.account_detail", account_id=a.id),
                  orders_url=url_for("reseller.orders"),
                  tenant=db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one())


@bp.route("/resellers", methods=["GET", "POST"])
def resellers():
    form = ResellerForm(data={"base_extension": get_int("base_extension")})
    form.parent_id.choices = [
        (t.id, t.name) for t in db.session.execute(select(Tenant).order_by(Tenant.path)).scalars()
    ]
    if form.validate_on_submit():
        owner_only()
        if tenant := create_reseller_from(form):
            db.session.commit()
            flash(f"Sub-reseller {tenant.name} created.", "success")
            return redirect(url_for("reseller.reseller_detail", tenant_id=tenant.id))
    children = db.session.execute(
        select(Tenant).where(Tenant.id != current_user.tenant_id).order_by(Tenant.path)
    ).scalars().all()
    return render("reseller/resellers.html", form=form, children=children,
                  status=422 if form.errors else 200)


@bp.get("/resellers/<int:tenant_id>")
def reseller_detail(tenant_id):
    tenant = get_or_404(Tenant, tenant_id)
    accounts = db.session.scalar(select(func.count()).select_from(Account).where(Account.tenant_id == tenant.id))
    return render("reseller/reseller_detail.html", tenant=tenant, accounts=accounts)


@bp.route("/staff", methods=["GET", "POST"])
def staff():
    form = LoginCreateForm()
    if form.validate_on_submit():
        owner_only()
        if create_login_from(form, current_user.tenant_id):
            db.session.commit()
            flash(f"Login {form.email.data} added.", "success")
            return redirect(url_for("reseller.staff"))
    logins = db.session.execute(
        select(User).where(User.tenant_id == current_user.tenant_id, User.account_id.is_(None)).order_by(User.email)
    ).scalars().all()
    return render("reseller/staff.html", form=form, logins=logins, status=422 if form.errors else 200)


# The account page and its actions: portals/reseller/account_page.py.
