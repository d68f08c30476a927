"""Login and logout routes, added to each portal's blueprint."""
from urllib.parse import urlsplit

from flask import flash, redirect, request, session, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email

from app import audit
from app.logins.operations import LoginRefused, authenticate
from app.extensions import db
from app.web import render
from tenants.scope import scope_for_user, use_scope

PORTAL_TITLES = {"admin": "Platform admin", "reseller": "Reseller portal", "customer": "Customer portal"}


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email()])
    password = PasswordField("Password", validators=[DataRequired()])


def _safe_next(default):
    target = request.args.get("next", "")
    parts = urlsplit(target)
    return target if target.startswith("/") and not parts.netloc and not parts.scheme else default


def add_auth_routes(bp, portal: str) -> None:
    @bp.route("/login", methods=["GET", "POST"], endpoint="login")
    def login():
        form = LoginForm()
        status = 200
        if form.validate_on_submit():
            try:
                user = authenticate(form.email.data, form.password.data, portal)
            except LoginRefused as refused:
                db.session.commit()  # keep the failure count
                form.password.errors.append(str(refused))
                status = 422
            else:
                session.clear()
                login_user(user)
                with use_scope(scope_for_user(user, db.session)):
                    audit.record("login.succeeded", user)
                    if portal == "customer":
                        from app.notifications.alerts import signin_notice
                        from tenants.models import utcnow

                        signin_notice(user, request.remote_addr or "", utcnow())
                    db.session.commit()
                return redirect(_safe_next(url_for(f"{bp.name}.dashboard")))
        elif request.method == "POST":
            status = 422
        return render("auth/login.html", status=status, form=form, portal=portal,
                      portal_title=PORTAL_TITLES[portal])

    @bp.route("/logout", methods=["POST"], endpoint="logout")
    def logout():
        logout_user()
        session.clear()
        flash("You are logged out.", "info")
        return redirect(url_for(f"{bp.name}.login"))
