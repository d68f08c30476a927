"""Customer portal: the account's portal logins and what each may use (seed 002,
"Customer Self Service Portal": username, password, permissions)."""
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Email, Length
from wtforms.widgets import CheckboxInput, ListWidget

from app.extensions import db
from app.logins.models import User
from app.logins.operations import LoginError, create_portal_login, set_portal_permissions
from app.logins.permissions import PORTAL_PERMISSIONS
from app.web import render
from portals.customer import bp
from portals.customer.routes import my_account

PERMISSION_CHOICES = [(key, label) for key, (label, _endpoints) in PORTAL_PERMISSIONS.items()]


class PermissionsField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PortalLoginForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email (login)", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, message="Use at least 8 characters.")])
    permissions = PermissionsField("May use", choices=PERMISSION_CHOICES)


def _logins(account_id):
    return db.session.execute(select(User).where(User.account_id == account_id).order_by(User.id)).scalars().all()


def _login_of_account(login_id) -> User:
    user = db.session.execute(
        select(User).where(User.id == login_id, User.account_id == current_user.account_id)
    ).scalar_one_or_none()
    if user is None:
        abort(404)
    return user


@bp.route("/logins", methods=["GET", "POST"], endpoint="logins")
def logins():
    account = my_account()
    form = PortalLoginForm()
    if form.validate_on_submit():
        try:
            create_portal_login(account_id=account.id, tenant_id=account.tenant_id, email=form.email.data,
                                name=form.name.data, password=form.password.data, permissions=form.permissions.data)
        except LoginError as e:
            db.session.rollback()
            getattr(form, e.field).errors.append(str(e))
        else:
            db.session.commit()
            flash(f"Login {form.email.data} added.", "success")
            return redirect(url_for("customer.logins"), code=303)
    return render("customer/logins.html", account=my_account(), logins=_logins(account.id), form=form,
                  choices=PERMISSION_CHOICES, status=422 if form.errors else 200, title="Portal logins")


@bp.post("/logins/<int:login_id>/permissions", endpoint="login_permissions")
def login_permissions(login_id):
    user = _login_of_account(login_id)
    if not FlaskForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    try:
        set_portal_permissions(user, request.form.getlist("permissions"), active=bool(request.form.get("active")))
    except LoginError as e:
        flash(str(e), "error")
    else:
        db.session.commit()
        flash(f"Permissions of {user.email} saved.", "success")
    return redirect(url_for("customer.logins"), code=303)
