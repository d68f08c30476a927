"""Reseller portal: an account's IP trunks (seed 002), a section of the account page.

GET/POST /reseller/accounts/<account_id>/trunks                         the section (htmx) / add
GET/POST /reseller/accounts/<account_id>/trunks/<trunk_id>/edit         edit one
POST     /reseller/accounts/<account_id>/trunks/<trunk_id>/status       enable / disable
POST     /reseller/accounts/<account_id>/trunks/<trunk_id>/delete       delete
Thin: load through the tenant scope, one operation of provisioning/trunks.py (FieldError next to
its field, nothing written), commit once.
"""
from flask import abort, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField

from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db
from app.web import render
from portals.reseller import bp
from provisioning import trunks as ops
from tenants import get_or_404


class TrunkForm(FlaskForm):
    name = StringField("Trunk name", description="Such as “Office PBX”.")
    hosts = TextAreaField("IP addresses", description="The addresses or networks (CIDR) the trunk sends calls "
                                                      "from, separated by spaces or commas: 203.0.113.10 203.0.113.0/28.")
    call_limit = StringField("Call limit", default="0", description="Simultaneous calls from this trunk; 0: only "
                                                                   "the account's own limit.")
    cps_limit = StringField("CPS limit", default="0", description="New calls per second from this trunk; 0: only "
                                                                 "the account's own limit.")
    enabled = BooleanField("Enabled", default=True)


class ActionForm(FlaskForm):
    pass


def _values(form):
    return dict(name=form.name.data, hosts=form.hosts.data, call_limit=form.call_limit.data,
                cps_limit=form.cps_limit.data, enabled=form.enabled.data)


def _show(form, e: FieldError):
    target = form[e.field] if e.field in form._fields else form.name
    target.errors = list(target.errors) + [e.message]


def _section(account, form=None, status=200):
    form = form or TrunkForm(formdata=None)
    return render("reseller/_account_trunks.html", account=account, form=form, trunks=ops.trunks_of(account.id),
                  action_form=ActionForm(formdata=None), status=status)


def _done(account_id, message):
    flash(message, "success")
    return redirect(url_for("reseller.account_detail", account_id=account_id) + "#trunks", code=303)


def _load(account_id, trunk_id):
    account = get_or_404(Account, account_id)
    trunk = get_or_404(ops.CustomerTrunk, trunk_id)
    if trunk.account_id != account.id:
        abort(404)
    return account, trunk


@bp.route("/accounts/<int:account_id>/trunks", methods=["GET", "POST"])
def account_trunks(account_id):
    account = get_or_404(Account, account_id)
    if request.method == "GET":
        return _section(account)
    form = TrunkForm()
    if not form.validate():
        return _section(account, form, 400)
    try:
        trunk = ops.add_trunk(account, **_values(form))
    except FieldError as e:
        db.session.rollback()
        account = get_or_404(Account, account_id)
        _show(form, e)
        return _section(account, form, 422)
    name, endpoint = trunk.name, trunk.endpoint
    db.session.commit()
    return _done(account_id, f"Trunk {name} added: calls from its addresses arrive as endpoint {endpoint}.")


@bp.route("/accounts/<int:account_id>/trunks/<int:trunk_id>/edit", methods=["GET", "POST"])
def account_trunk_edit(account_id, trunk_id):
    account, trunk = _load(account_id, trunk_id)
    if request.method == "POST":
        form = TrunkForm()
        if not form.validate():
            return render("reseller/trunk_form.html", account=account, trunk=trunk, form=form, status=400)
        try:
            changed = ops.update_trunk(trunk, account, **_values(form))
        except FieldError as e:
            db.session.rollback()
            account, trunk = _load(account_id, trunk_id)
            _show(form, e)
            return render("reseller/trunk_form.html", account=account, trunk=trunk, form=form, status=422)
        name = trunk.name
        db.session.commit()
        return _done(account_id, f"Trunk {name} saved." if changed else "Nothing changed.")
    form = TrunkForm(formdata=None, obj=trunk)
    form.call_limit.data, form.cps_limit.data = str(trunk.call_limit), str(trunk.cps_limit)
    return render("reseller/trunk_form.html", account=account, trunk=trunk, form=form,
                  title=f"Trunk {trunk.name}")


@bp.post("/accounts/<int:account_id>/trunks/<int:trunk_id>/status")
def account_trunk_status(account_id, trunk_id):
    account, trunk = _load(account_id, trunk_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    action = request.form.get("action", "")
    if action not in ("enable", "disable"):
        abort(400, description="Choose enable or disable.")
    ops.set_enabled(trunk, account, action == "enable")
    name = trunk.name
    db.session.commit()
    return _done(account_id, f"Trunk {name} {action}d.")


@bp.post("/accounts/<int:account_id>/trunks/<int:trunk_id>/delete")
def account_trunk_delete(account_id, trunk_id):
    account, trunk = _load(account_id, trunk_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    name = trunk.name
    ops.delete_trunk(trunk)
    db.session.commit()
    return _done(account_id, f"Trunk {name} deleted: calls from its addresses are no longer accepted.")
