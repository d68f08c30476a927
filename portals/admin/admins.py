"""Platform admins and sub-admins (seed 004: created the same way as resellers)."""
from flask import flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectField

from app.extensions import db
from app.logins.models import User
from app.web import render
from portals.admin import bp
from portals.forms import LoginCreateForm, create_login_from


class AdminLoginForm(LoginCreateForm):
    role = SelectField("Role", choices=[("platform_subadmin", "Sub-admin (no admins, no platform settings)"),
                                        ("platform_admin", "Platform admin")])


@bp.route("/admins", methods=["GET", "POST"], endpoint="admins")
def admins():
    form = AdminLoginForm()
    if form.validate_on_submit() and create_login_from(form, current_user.tenant_id):
        db.session.commit()
        flash(f"Login {form.email.data} added.", "success")
        return redirect(url_for("admin.admins"), code=303)
    logins = db.session.execute(
        select(User).where(User.role.in_(("platform_admin", "platform_subadmin"))).order_by(User.email)
    ).scalars().all()
    return render("admin/admins.html", form=form, logins=logins, status=422 if form.errors else 200)
