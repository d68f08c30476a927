"""Platform admin: the Asterisk servers the AMI watcher follows (/admin/servers).

List with link status, new, edit, enable/disable, delete. Each handler: load (get_or_404),
check (app.calls.servers raises FieldError with the field to show it next to), commit once.
The `ami` process re-reads the enabled servers every 30 s, so changes apply without a restart.
"""
from flask import abort, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, StringField

from app.calls import in_use
from app.calls import servers as asterisk
from app.calls.servers import AsteriskServer
from app.conflicts import FieldError
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm
from portals.admin import bp
from tenants import get_or_404

# `in_use(account_number)` and `extension_in_use(sip_username)` for every portal's templates.


class AsteriskServerForm(FlaskForm):
    """Values and the CSRF token; app.calls.servers checks them (one clear message per field)."""
    name = StringField("Name", description="Short and stable, such as pbx1: it labels the live counts "
                                           "and every call recorded through this server.")
    host = StringField("Host", description="Host name or IP address of the Asterisk server.")
    port = StringField("Port", default="5038", description="AMI port (manager.conf `port`, usually 5038).")
    username = StringField("AMI user", description="The [section] name of the user in manager.conf.")
    secret = PasswordField("AMI secret")
    enabled = BooleanField("Enabled", default=True,
                           description="The watcher follows enabled servers; changes apply within 30 s.")


def _values(form: AsteriskServerForm) -> dict:
    return dict(name=form.name.data, host=form.host.data, port=form.port.data,
                username=form.username.data, secret=form.secret.data, enabled=form.enabled.data)


def _show_error(form: AsteriskServerForm, e: FieldError) -> None:
    target = form[e.field] if e.field in form._fields else form.name
    target.errors = list(target.errors) + [e.message]


def _form_page(form, server=None, status=200):
    title = f"Edit {server.name}" if server else "New Asterisk server"
    return render("admin/server_form.html", form=form, server=server, title=title, status=status)


@bp.get("/servers")
def servers():
    rows = db.session.execute(select(AsteriskServer).order_by(AsteriskServer.name)).scalars().all()
    alive = {s.name: in_use.watcher_alive(s.name) for s in rows if s.enabled}
    return render("admin/servers.html", servers=rows, alive=alive, action_form=ActionForm(formdata=None),
                  title="Asterisk servers")


@bp.route("/servers/new", methods=["GET", "POST"])
def server_new():
    form = AsteriskServerForm()
    if request.method == "POST":
        if not form.validate():
            return _form_page(form, status=400)
        try:
            server = asterisk.create_server(**_values(form))
        except FieldError as e:
            db.session.rollback()
            _show_error(form, e)
            return _form_page(form, status=422)
        name = server.name
        db.session.commit()
        flash(f"Server {name} added. The watcher connects to it within 30 s.", "success")
        return redirect(url_for("admin.servers"), code=303)
    return _form_page(form)


@bp.route("/servers/<int:server_id>/edit", methods=["GET", "POST"])
def server_edit(server_id):
    server = get_or_404(AsteriskServer, server_id)
    if request.method == "POST":
        form = AsteriskServerForm()
        if not form.validate():
            return _form_page(form, server, status=400)
        try:
            changes = asterisk.update_server(server, **_values(form))
        except FieldError as e:
            db.session.rollback()
            _show_error(form, e)
            return _form_page(form, server, status=422)
        name = server.name
        db.session.commit()
        flash(f"Server {name} saved." if changes else "Nothing changed.", "success" if changes else "info")
        return redirect(url_for("admin.servers"), code=303)
    form = AsteriskServerForm(formdata=None, obj=server)
    form.port.data = str(server.port)
    return _form_page(form, server)


@bp.post("/servers/<int:server_id>/status")
def server_status(server_id):
    server = get_or_404(AsteriskServer, server_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    action = request.form.get("action", "")
    if action not in ("enable", "disable"):
        abort(400, description="Choose enable or disable.")
    changed = asterisk.set_enabled(server, action == "enable")
    name = server.name
    db.session.commit()
    if changed:
        flash(f"Server {name} {'enabled' if action == 'enable' else 'disabled'}; the watcher follows within 30 s.",
              "success")
    return redirect(url_for("admin.servers"), code=303)


@bp.post("/servers/<int:server_id>/delete")
def server_delete(server_id):
    server = get_or_404(AsteriskServer, server_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    name = server.name
    asterisk.delete_server(server)
    db.session.commit()
    flash(f"Server {name} deleted. Calls recorded through it keep its name.", "success")
    return redirect(url_for("admin.servers"), code=303)
