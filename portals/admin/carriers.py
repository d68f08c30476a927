"""Platform admin: carriers (SIP trunks the platform buys from), route groups and routes, and a
lookup that shows which route and carrier order a typed number would get (/admin/carriers,
/admin/routing). Handlers load, call app.routing.manage (FieldError next to its field), commit once.
"""
from datetime import datetime, timezone

from flask import abort, flash, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField

from app.conflicts import FieldError
from app.extensions import db
from app.rating.cdr import sheet_index
from app.rating.models import RateSheet
from app.routing import lcr, manage
from app.routing.models import Carrier, Route, RouteGroup
from app.web import hx_redirect, render
from portals.account_forms import ActionForm
from portals.admin import bp
from tenants import get_or_404


class CarrierForm(FlaskForm):
    name = StringField("Name", description="How routes and reports name this carrier.")
    host = StringField("SIP host", description="The carrier's SIP proxy: host name or IP address.")
    port = StringField("Port", default="5060")
    username = StringField("Username", description="Leave username and secret blank when the carrier "
                                                   "authenticates us by IP address.")
    secret = PasswordField("Secret")
    strip_digits = StringField("Strip digits", default="0",
                               description="Leading digits removed from the E.164 number before sending.")
    add_prefix = StringField("Add prefix", description="Then added in front, such as 00 or a tech prefix.")
    buy_rate_sheet_id = SelectField("Buy rate sheet", coerce=str, validate_choice=False,
                                    description="What this carrier charges the platform: least-cost routing "
                                                "compares these rates; a carrier without one is skipped by least cost.")
    enabled = BooleanField("Enabled", default=True, description="Disabled carriers drop out of every route.")


class GroupForm(FlaskForm):
    name = StringField("Name")
    strategy = SelectField("Order of carriers", choices=list(manage.STRATEGIES.items()))
    is_default = BooleanField("Default group", description="Used by accounts without a customer route.")


class RouteForm(FlaskForm):
    prefixes = TextAreaField("Prefixes", description="Digits, separated by spaces or commas (the longest "
                                                     "matching prefix wins); * for every destination.")


def _carrier_slots(form_data=None, chosen=()):
    """MAX_CARRIERS select values: the chosen ids in order, then blanks."""
    if form_data is not None:
        return [form_data.get(f"carrier_{n}", "") for n in range(1, manage.MAX_CARRIERS + 1)]
    chosen = [str(c) for c in chosen]
    return chosen + [""] * (manage.MAX_CARRIERS - len(chosen))


def _sheets(tenant_id):
    return db.session.execute(select(RateSheet.id, RateSheet.name, RateSheet.currency)
                              .where(RateSheet.tenant_id == tenant_id).order_by(RateSheet.name)).all()


def _show(form, e: FieldError, errors: dict | None = None):
    if e.field in form._fields:
        form[e.field].errors = list(form[e.field].errors) + [e.message]
    elif errors is not None:
        errors[e.field or "form"] = e.message
    else:
        form.name.errors = list(form.name.errors) + [e.message]


# ---- carriers -----------------------------------------------------------------------------
@bp.get("/carriers")
def carriers():
    tenant_id = manage.platform_tenant_id()
    rows = db.session.execute(select(Carrier).where(Carrier.tenant_id == tenant_id)
                              .order_by(Carrier.name)).scalars().all()
    sheets = {s.id: f"{s.name} ({s.currency})" for s in _sheets(tenant_id)}
    return render("admin/carriers.html", carriers=rows, sheets=sheets, action_form=ActionForm(formdata=None),
                  title="Carriers")


def _carrier_page(form, carrier=None, status=200):
    title = f"Edit {carrier.name}" if carrier else "New carrier"
    return render("admin/carrier_form.html", form=form, carrier=carrier, title=title, status=status)


def _carrier_form(tenant_id, **kw):
    form = CarrierForm(**kw)
    form.buy_rate_sheet_id.choices = [("", "— none —")] + [(str(s.id), f"{s.name} ({s.currency})")
                                                           for s in _sheets(tenant_id)]
    return form


def _carrier_values(form, tenant_id):
    return dict(name=form.name.data, host=form.host.data, port=form.port.data, username=form.username.data,
                secret=form.secret.data, strip_digits=form.strip_digits.data, add_prefix=form.add_prefix.data,
                buy_rate_sheet_id=form.buy_rate_sheet_id.data, enabled=form.enabled.data,
                sheet_ids=[s.id for s in _sheets(tenant_id)])


@bp.route("/carriers/new", methods=["GET", "POST"])
def carrier_new():
    tenant_id = manage.platform_tenant_id()
    form = _carrier_form(tenant_id)
    if request.method == "POST":
        if not form.validate():
            return _carrier_page(form, status=400)
        try:
            carrier = manage.create_carrier(tenant_id, **_carrier_values(form, tenant_id))
        except FieldError as e:
            db.session.rollback()
            _show(form, e)
            return _carrier_page(form, status=422)
        name, cid = carrier.name, carrier.id
        db.session.commit()
        flash(f"Carrier {name} added: the switch dials it as endpoint carrier-{cid}.", "success")
        return hx_redirect(url_for("admin.carriers"))
    return _carrier_page(form)


@bp.route("/carriers/<int:carrier_id>/edit", methods=["GET", "POST"])
def carrier_edit(carrier_id):
    carrier = get_or_404(Carrier, carrier_id)
    tenant_id = carrier.tenant_id
    if request.method == "POST":
        form = _carrier_form(tenant_id)
        if not form.validate():
            return _carrier_page(form, carrier, status=400)
        try:
            changed = manage.update_carrier(carrier, **_carrier_values(form, tenant_id))
        except FieldError as e:
            db.session.rollback()
            carrier = get_or_404(Carrier, carrier_id)
            _show(form, e)
            return _carrier_page(form, carrier, status=422)
        name = carrier.name
        db.session.commit()
        flash(f"Carrier {name} saved." if changed else "Nothing changed.", "success" if changed else "info")
        return hx_redirect(url_for("admin.carriers"))
    form = _carrier_form(tenant_id, formdata=None, obj=carrier)
    form.port.data, form.strip_digits.data = str(carrier.port), str(carrier.strip_digits)
    form.buy_rate_sheet_id.data = str(carrier.buy_rate_sheet_id or "")
    return _carrier_page(form, carrier)


@bp.post("/carriers/<int:carrier_id>/status")
def carrier_status(carrier_id):
    carrier = get_or_404(Carrier, carrier_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    action = request.form.get("action", "")
    if action not in ("enable", "disable"):
        abort(400, description="Choose enable or disable.")
    changed = manage.set_carrier_enabled(carrier, action == "enable")
    name = carrier.name
    db.session.commit()
    if changed:
        flash(f"Carrier {name} {action}d." + (" Routes skip it from the next call." if action == "disable" else ""),
              "success")
    return hx_redirect(url_for("admin.carriers"))


# ---- route groups and routes --------------------------------------------------------------
@bp.get("/routing")
def routing():
    tenant_id = manage.platform_tenant_id()
    groups = db.session.execute(select(RouteGroup).where(RouteGroup.tenant_id == tenant_id)
                                .order_by(RouteGroup.name)).scalars().all()
    return render("admin/routing.html", groups=groups, routes=manage.routes_of([g.id for g in groups]),
                  names=manage.carrier_names(tenant_id), strategies=manage.STRATEGIES,
                  action_form=ActionForm(formdata=None), title="Routing")


def _group_page(form, group=None, status=200):
    title = f"Edit {group.name}" if group else "New route group"
    return render("admin/route_group_form.html", form=form, group=group, title=title, status=status)


@bp.route("/routing/groups/new", methods=["GET", "POST"])
def route_group_new():
    tenant_id = manage.platform_tenant_id()
    form = GroupForm()
    if request.method == "POST":
        if not form.validate():
            return _group_page(form, status=400)
        try:
            group = manage.create_group(tenant_id, name=form.name.data, strategy=form.strategy.data,
                                        is_default=form.is_default.data)
        except FieldError as e:
            db.session.rollback()
            _show(form, e)
            return _group_page(form, status=422)
        name = group.name
        db.session.commit()
        flash(f"Route group {name} added. Add its routes next.", "success")
        return hx_redirect(url_for("admin.routing"))
    return _group_page(form)


@bp.route("/routing/groups/<int:group_id>/edit", methods=["GET", "POST"])
def route_group_edit(group_id):
    group = get_or_404(RouteGroup, group_id)
    if request.method == "POST":
        form = GroupForm()
        if not form.validate():
            return _group_page(form, group, status=400)
        try:
            changed = manage.update_group(group, name=form.name.data, strategy=form.strategy.data,
                                          is_default=form.is_default.data)
        except FieldError as e:
            db.session.rollback()
            group = get_or_404(RouteGroup, group_id)
            _show(form, e)
            return _group_page(form, group, status=422)
        db.session.commit()
        flash("Route group saved." if changed else "Nothing changed.", "success" if changed else "info")
        return hx_redirect(url_for("admin.routing"))
    return _group_page(GroupForm(formdata=None, obj=group), group)


def _route_page(form, group, slots, errors, route=None, status=200):
    names = manage.carrier_names(group.tenant_id)
    title = f"Edit route {route.prefix or '*'} of {group.name}" if route else f"New route in {group.name}"
    return render("admin/route_form.html", form=form, group=group, route=route, slots=slots, errors=errors,
                  names=names, title=title, status=status)


@bp.route("/routing/groups/<int:group_id>/routes/new", methods=["GET", "POST"])
def route_new(group_id):
    group = get_or_404(RouteGroup, group_id)
    form, errors = RouteForm(), {}
    if request.method == "POST":
        slots = _carrier_slots(request.form)
        if not form.validate():
            return _route_page(form, group, slots, errors, status=400)
        try:
            made = manage.add_routes(group, prefixes=form.prefixes.data, carriers=slots)
        except FieldError as e:
            db.session.rollback()
            group = get_or_404(RouteGroup, group_id)
            _show(form, e, errors)
            return _route_page(form, group, slots, errors, status=422)
        n, name = len(made), group.name
        db.session.commit()
        flash(f"{n} route{'s' if n != 1 else ''} added to {name}.", "success")
        return hx_redirect(url_for("admin.routing"))
    return _route_page(form, group, _carrier_slots(), errors)


@bp.route("/routing/routes/<int:route_id>/edit", methods=["GET", "POST"])
def route_edit(route_id):
    route = get_or_404(Route, route_id)
    group = get_or_404(RouteGroup, route.group_id)
    errors = {}
    if request.method == "POST":
        form, slots = RouteForm(), _carrier_slots(request.form)
        if not form.validate():
            return _route_page(form, group, slots, errors, route, status=400)
        try:
            manage.update_route(route, group, prefixes=form.prefixes.data, carriers=slots)
        except FieldError as e:
            db.session.rollback()
            route, group = get_or_404(Route, route_id), get_or_404(RouteGroup, group.id)
            _show(form, e, errors)
            return _route_page(form, group, slots, errors, route, status=422)
        db.session.commit()
        flash("Route saved.", "success")
        return hx_redirect(url_for("admin.routing"))
    form = RouteForm(formdata=None, data={"prefixes": route.prefix or "*"})
    chosen = manage.routes_of([group.id])[group.id]
    slots = _carrier_slots(chosen=next((ids for r, ids in chosen if r.id == route.id), []))
    return _route_page(form, group, slots, errors, route)


@bp.post("/routing/routes/<int:route_id>/delete")
def route_delete(route_id):
    route = get_or_404(Route, route_id)
    group = get_or_404(RouteGroup, route.group_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    prefix, name = route.prefix or "*", group.name
    manage.delete_route(route, group)
    db.session.commit()
    flash(f"Route {prefix} removed from {name}.", "success")
    return hx_redirect(url_for("admin.routing"))


def _buy_rate(sheet_id: int, destination: str):
    version = db.session.execute(select(RateSheet.version).where(RateSheet.id == sheet_id)).scalar_one_or_none()
    if version is None:
        return None
    tariff = sheet_index(sheet_id, version, datetime.now(timezone.utc).date()).lookup(destination)
    return None if tariff is None else tariff.rate_per_minute


@bp.get("/routing/lookup")
def route_lookup():
    """Which route and carrier order a number gets in a group (the default group unless chosen)."""
    tenant_id = manage.platform_tenant_id()
    groups = db.session.execute(select(RouteGroup).where(RouteGroup.tenant_id == tenant_id)
                                .order_by(RouteGroup.name)).scalars().all()
    raw = (request.args.get("number") or "").strip()
    number = "".join(ch for ch in raw if ch.isdigit())
    error, result = "", None
    group_id = request.args.get("group_id", type=int)
    group = next((g for g in groups if g.id == group_id), None) or next((g for g in groups if g.is_default), None)
    if raw:
        if not number or len(number) > 32 or any(ch not in "0123456789+ -()." for ch in raw):
            error = "Type a number in international format, digits only (such as 442071234567)."
        elif group is None:
            error = "No route group yet (or none is the default): add one first."
        else:
            route_id = lcr.matching_route(group.id, number)
            route = (db.session.execute(select(Route).where(Route.id == route_id)).scalar_one_or_none()
                     if route_id else None)
            legs = lcr.legs_for(group, number, _buy_rate) if route else []
            listed = manage.routes_of([group.id])[group.id]
            listed_ids = next((ids for r, ids in listed if route and r.id == route.id), [])
            left_out = [i for i in listed_ids if i not in {leg.carrier_id for leg in legs}]
            result = dict(route=route, legs=legs, left_out=left_out)
    return render("admin/route_lookup.html", groups=groups, group=group, raw=raw, number=number, error=error,
                  result=result, names=manage.carrier_names(tenant_id), strategies=manage.STRATEGIES,
                  title="Route lookup")


# ---- the platform's margin by carrier and country -----------------------------------------
def _day(value, default):
    from datetime import date

    if not value:
        return default, ""
    try:
        return date.fromisoformat(value), ""
    except ValueError:
        return default, "Enter a date as YYYY-MM-DD."


@bp.get("/routing/margin")
def carrier_margin():
    """Rated calls with a recorded carrier, per carrier, country and currency: what the platform
    sells them at (a top-level reseller's buy price, or the platform's own customers' charge),
    what the carrier costs (its buy sheet), and the margin. Sub-resellers' calls are counted but
    priced at their own parent's sheet, not the platform's: no platform price for them."""
    from datetime import date, timedelta

    from sqlalchemy import case, func

    from app.accounts.models import Account
    from app.calls.models import Call
    from tenants.models import Tenant

    today = datetime.now(timezone.utc).date()
    start, start_error = _day(request.args.get("start"), today - timedelta(days=30))
    end, end_error = _day(request.args.get("end"), today)
    errors = {k: v for k, v in (("start", start_error), ("end", end_error)) if v}
    if not errors and end < start:
        errors["end"] = "The end date is before the start date."
    root_id = manage.platform_tenant_id()
    rows = []
    if not errors:
        sell = case((Tenant.id == root_id, Call.cost), (Tenant.parent_id == root_id, Call.buy_cost), else_=None)
        same_currency = RateSheet.currency == Account.currency
        carrier_cost = case((same_currency, Call.carrier_cost), else_=None)
        q = (select(Carrier.id, Carrier.name, Call.country, Account.currency, RateSheet.currency,
                    func.count(Call.id), func.sum(Call.billsec), func.sum(sell), func.sum(carrier_cost),
                    func.sum(case((sell.is_not(None) & carrier_cost.is_not(None), sell - carrier_cost), else_=None)),
                    func.count(case((sell.is_(None) | carrier_cost.is_(None), 1), else_=None)))
             .select_from(Call)
             .join(Account, Account.id == Call.account_id)
             .join(Tenant, Tenant.id == Account.tenant_id)
             .join(Carrier, Carrier.id == Call.carrier_id)
             .outerjoin(RateSheet, RateSheet.id == Carrier.buy_rate_sheet_id)
             .where(Call.rated_at.is_not(None), Call.billsec > 0,
                    Call.started_at >= datetime.combine(start, datetime.min.time()),
                    Call.started_at < datetime.combine(end + timedelta(days=1), datetime.min.time()))
             .group_by(Carrier.id, Carrier.name, Call.country, Account.currency, RateSheet.currency)
             .order_by(Carrier.name, Call.country, Account.currency))
        rows = db.session.execute(q).all()
    return render("admin/carrier_margin.html", rows=rows, start=start, end=end, errors=errors,
                  raw={"start": request.args.get("start", start.isoformat() if not start_error else ""),
                       "end": request.args.get("end", end.isoformat() if not end_error else "")},
                  status=422 if errors else 200, title="Carrier margin")
