"""Reseller portal: payment history (all accounts and per account, filterable) and the
reseller's own Stripe account with its top-up limits. Thin: app/payments does the work."""
from flask import flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db
from app.payments import checkout, history
from app.payments.operations import save_stripe_settings
from app.web import render
from portals.access import owner_only
from portals.account_forms import MoneyField, plain_amount
from portals.reseller import bp
from tenants import Tenant, get_or_404


def _list(account=None):
    f, errors = history.Filters.from_args(request.args, account_id=account.id if account else None)
    rows, total = history.page(f)
    return render("reseller/payments.html", rows=rows, total=total, filters=f, errors=errors, account=account,
                  statuses=history.STATUS_FILTERS, methods=history.METHODS, page_size=history.PAGE_SIZE,
                  status=422 if errors else 200, title="Payments")


@bp.get("/payments")
def payments():
    return _list()


@bp.get("/accounts/<int:account_id>/payments")
def account_payments(account_id):
    return _list(get_or_404(Account, account_id))


class StripeSettingsForm(FlaskForm):
    publishable_key = StringField("Publishable key", validators=[Length(max=255)])
    secret_key = PasswordField("Secret key", validators=[Length(max=255)])
    webhook_secret = PasswordField("Webhook signing secret", validators=[Length(max=255)])
    remove_keys = BooleanField("Stop using my own Stripe account (the platform's collects the money)")
    topup_min = MoneyField("Smallest top-up", validators=[InputRequired("Enter the smallest top-up.")])
    topup_max = MoneyField("Largest top-up", validators=[InputRequired("Enter the largest top-up.")])
    presets = StringField("Preset amounts", validators=[Length(max=120)],
                          description="Up to six amounts, separated by commas, e.g. 10, 25, 50.")


@bp.route("/payments/settings", methods=["GET", "POST"])
def payment_settings():
    tenant = db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one()
    row = checkout.settings_of(tenant.id)
    limits = checkout.limits_for(tenant.id)
    status = 200
    if request.method == "GET":
        form = StripeSettingsForm(formdata=None, publishable_key=row.publishable_key if row else "",
                                  presets=", ".join(plain_amount(a) for a in limits.presets))
        form.topup_min.data, form.topup_max.data = limits.minimum, limits.maximum
    else:
        owner_only()
        form = StripeSettingsForm()
        status = 422
        if form.validate():
            try:
                save_stripe_settings(tenant.id, publishable_key=form.publishable_key.data or "",
                                     secret_key=form.secret_key.data or "",
                                     webhook_secret=form.webhook_secret.data or "", remove_keys=form.remove_keys.data,
                                     topup_min=form.topup_min.data, topup_max=form.topup_max.data,
                                     presets=form.presets.data or "")
            except FieldError as e:
                db.session.rollback()
                getattr(form, e.field).errors = list(getattr(form, e.field).errors) + [e.message]
            else:
                db.session.commit()
                flash("Payment settings saved.", "success")
                return redirect(url_for("reseller.payment_settings"), code=303)
    webhook_url = url_for("webhooks.stripe_tenant", webhook_key=row.webhook_key, _external=True) if row else None
    return render("reseller/payment_settings.html", status=status, form=form, row=row, tenant=tenant,
                  webhook_url=webhook_url, platform_url=url_for("webhooks.stripe_platform", _external=True),
                  title="Payment settings")
