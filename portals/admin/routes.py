"""Platform admin: resellers, their logins, platform settings."""
from flask import abort, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField
from sqlalchemy import func, select

from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db
from app.rating.models import RateSheet
from app.rating.sheets import set_buy_sheet
from app.settings import get_int
from app.logins.models import User
from app.web import hx_redirect, render
from portals.dashboard import overview
from portals.admin import bp
from portals.forms import (LoginCreateForm, ResellerEditForm, ResellerForm, StatusForm, create_login_from,
                           create_reseller_from)
from tenants import Tenant, get_or_404
from app.resellers.operations import TenantError, set_status, update_tenant


def _tenant_choices():
    tenants = db.session.execute(select(Tenant).order_by(Tenant.path)).scalars()
    return [(t.id, ("— " * t.depth) + t.name) for t in tenants]


@bp.get("/", endpoint="dashboard")
def dashboard():
    counts = {
        "resellers": db.session.scalar(select(func.count()).select_from(Tenant).where(Tenant.parent_id.is_not(None))),
        "accounts": db.session.scalar(select(func.count()).select_from(Account)),
        "logins": db.session.scalar(select(func.count()).select_from(User)),
    }
    from app.calls import in_use
    from app.calls.servers import AsteriskServer

    servers = db.session.execute(select(AsteriskServer).order_by(AsteriskServer.name)).scalars().all()
    health = [(s, in_use.watcher_alive(s.name) if s.enabled else None) for s in servers]
    return render("admin/dashboard.html", counts=counts, o=overview(), health=health,
                  account_url=lambda a: url_for("admin.reseller_detail", tenant_id=a.tenant_id),
                  orders_url=None, title="Platform")


@bp.get("/resellers")
def resellers():
    rows = db.session.execute(
        select(Tenant, func.count(Account.id)).outerjoin(Account, Account.tenant_id == Tenant.id)
        .group_by(Tenant.id).order_by(Tenant.path)
    ).all()
    return render("admin/resellers.html", rows=rows, form=StatusForm())


@bp.route("/resellers/new", methods=["GET", "POST"])
def reseller_new():
    form = ResellerForm(data={"base_extension": get_int("base_extension")})
    form.parent_id.choices = _tenant_choices()
    if form.validate_on_submit() and (tenant := create_reseller_from(form)):
        db.session.commit()
        flash(f"Reseller {tenant.name} created. Add its owner login next.", "success")
        return redirect(url_for("admin.reseller_detail", tenant_id=tenant.id))
    return render("admin/reseller_form.html", form=form, status=422 if form.errors else 200,
                  title="New reseller")


class BuySheetForm(FlaskForm):
    rate_sheet_id = SelectField("Buys at", coerce=int, default=0, validate_choice=False,
                                description="The platform rate sheet this reseller pays: its cost price in "
                                            "margin reports (same currency as the reseller).")


def _buy_sheet_form(tenant, formdata=None):
    """The buy-sheet form of a top-level reseller (None for the platform or a sub-reseller, whose
    parent reseller assigns it)."""
    if tenant.parent is None or tenant.parent.parent_id is not None:
        return None
    form = BuySheetForm(formdata=formdata, data={"rate_sheet_id": tenant.buy_rate_sheet_id or 0})
    sheets = db.session.execute(select(RateSheet.id, RateSheet.name, RateSheet.currency)
                                .where(RateSheet.tenant_id == tenant.parent_id).order_by(RateSheet.name)).all()
    form.rate_sheet_id.choices = [(0, "— none —")] + [(s.id, f"{s.name} ({s.currency})") for s in sheets]
    return form


def _detail(tenant, login_form=None, buy_form=None, status=200):
    logins = db.session.execute(select(User).where(User.tenant_id == tenant.id, User.account_id.is_(None))
                                .order_by(User.email)).scalars().all()
    children = db.session.execute(select(Tenant).where(Tenant.parent_id == tenant.id)).scalars().all()
    return render("admin/reseller_detail.html", tenant=tenant, logins=logins, children=children,
                  login_form=login_form or LoginCreateForm(), status_form=StatusForm(),
                  buy_form=buy_form or _buy_sheet_form(tenant), status=status)


@bp.get("/resellers/<int:tenant_id>")
def reseller_detail(tenant_id):
    return _detail(get_or_404(Tenant, tenant_id))


@bp.post("/resellers/<int:tenant_id>/buy-sheet")
def reseller_buy_sheet(tenant_id):
    """The platform assigns a top-level reseller its buy sheet (as a parent reseller does for a
    sub-reseller), so that reseller's margin report has a cost side."""
    tenant = get_or_404(Tenant, tenant_id)
    form = _buy_sheet_form(tenant, formdata=request.form)
    if form is None:
        abort(404)
    if not form.validate():
        return _detail(tenant, buy_form=form, status=400)
    try:
        set_buy_sheet(tenant, tenant.parent_id, form.rate_sheet_id.data or None)
    except FieldError as e:
        db.session.rollback()
        tenant = get_or_404(Tenant, tenant_id)
        form.rate_sheet_id.errors = [e.message]
        return _detail(tenant, buy_form=form, status=422)
    name = tenant.name
    db.session.commit()
    flash(f"{name} now buys at the sheet you chose." if form.rate_sheet_id.data else f"{name} has no buy sheet now.",
          "success")
    return hx_redirect(url_for("admin.reseller_detail", tenant_id=tenant_id))


@bp.route("/resellers/<int:tenant_id>/edit", methods=["GET", "POST"])
def reseller_edit(tenant_id):
    tenant = get_or_404(Tenant, tenant_id)
    form = ResellerEditForm(obj=tenant)
    if form.validate_on_submit():
        try:
            update_tenant(tenant, name=form.name.data, email=form.email.data, currency=form.currency.data,
                          base_extension=form.base_extension.data)
        except TenantError as e:
            db.session.rollback()
            tenant = get_or_404(Tenant, tenant_id)
            getattr(form, e.field, form.name).errors.append(str(e))
        else:
            db.session.commit()
            flash("Reseller saved.", "success")
            return redirect(url_for("admin.reseller_detail", tenant_id=tenant.id))
    return render("admin/reseller_form.html", form=form, tenant=tenant, title=f"Edit {tenant.name}",
                  status=422 if form.errors else 200)


@bp.post("/resellers/<int:tenant_id>/status")
def reseller_status(tenant_id):
    tenant = get_or_404(Tenant, tenant_id)
    form = StatusForm()
    if form.validate_on_submit():
        new = "suspended" if request.form.get("action") == "suspend" else "active"
        try:
            set_status(tenant, new)
        except TenantError as e:
            flash(str(e), "error")
        else:
            db.session.commit()
            flash(f"{tenant.name} is now {new}.", "success")
    return redirect(url_for("admin.reseller_detail", tenant_id=tenant.id))


@bp.post("/resellers/<int:tenant_id>/logins")
def reseller_login_new(tenant_id):
    tenant = get_or_404(Tenant, tenant_id)
    form = LoginCreateForm()
    if form.validate_on_submit() and create_login_from(form, tenant.id):
        db.session.commit()
        flash(f"Login {form.email.data} added.", "success")
        return redirect(url_for("admin.reseller_detail", tenant_id=tenant.id))
    return _detail(tenant, login_form=form, status=422)


@bp.get("/audit")
def audit_log():
    """Who did what to which record, newest first; filter by action prefix or login."""
    from app.audit import AuditEntry, record_labels

    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(200)
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip().lower()
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if actor:
        query = query.where(AuditEntry.actor_email.contains(actor))
    entries = db.session.execute(query).scalars().all()
    return render("admin/audit.html", entries=entries, action=action, actor=actor,
                  labels=record_labels(entries))
