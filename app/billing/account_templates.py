"""Account templates: a reseller's saved step-2 defaults ("create new by template").

A template holds plan and account settings, never what must be unique or personal
(plan name, numbers, expiry date, password). It keeps the currency of the account it was
saved from: its rate sheet is in that currency, and the wizard refuses it for an account in
another one (app.billing.plans.check_rate_sheet).
"""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from app import audit
from app.conflicts import FieldError, flush_or_conflict
from app.extensions import db
from tenants.mixins import TenantOwned
from tenants.models import utcnow

# The step-2 fields a template carries (names as in the wizard's step-2 form).
FIELDS = ("currency", "users", "cost_per_user", "initial_credit", "rate_sheet_id", "billing_type", "credit_limit",
          "max_channels", "cps_limit", "low_balance_threshold", "email_alerts", "invoice_day", "vat_rate",
          "expiry_mode", "expiry_days", "autorefill", "initial_balance", "with_pin", "countries", "tax_ids",
          "tax_exempt", "tax_exempt_reason")


class AccountTemplate(TenantOwned, db.Model):
    __tablename__ = "account_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    values: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _plain(v):
    if isinstance(v, Decimal):
        return str(v)
    return v


def values_from_account(account, plan, countries) -> dict:
    """The template values of an existing account and its plan."""
    from app.invoicing.taxes import account_tax_ids

    return {
        "currency": account.currency,
        "users": plan.users if plan else 1,
        "cost_per_user": _plain(plan.cost_per_user) if plan else "0",
        "initial_credit": "0",
        "rate_sheet_id": plan.rate_sheet_id if plan else None,
        "billing_type": account.billing_type,
        "credit_limit": _plain(account.credit_limit),
        "max_channels": account.max_channels,
        "cps_limit": account.cps_limit,
        "low_balance_threshold": _plain(account.low_balance_threshold),
        "email_alerts": account.email_alerts,
        "invoice_day": account.invoice_day,
        "tax_ids": account_tax_ids(account.id),
        "tax_exempt": bool(account.tax_exempt),
        "tax_exempt_reason": account.tax_exempt_reason or "",
        "expiry_mode": account.expiry_mode if account.expiry_mode != "date" else "none",
        "expiry_days": account.expiry_days,
        "autorefill": account.autorefill,
        "initial_balance": _plain(account.initial_balance),
        "with_pin": bool(account.pin),
        "countries": [[c.country, c.minutes] for c in countries],
    }


def save_template(tenant_id: int, name: str, values: dict) -> AccountTemplate:
    name = (name or "").strip()
    if not name:
        raise FieldError("name", "Give the template a name.")
    if len(name) > 120:
        raise FieldError("name", "At most 120 characters.")
    exists = db.session.execute(
        select(AccountTemplate.id).where(AccountTemplate.tenant_id == tenant_id, AccountTemplate.name == name)
    ).first()
    if exists:
        raise FieldError("name", "A template with this name already exists.")
    if values.get("rate_sheet_id"):
        from app.billing.plans import check_rate_sheet

        try:
            check_rate_sheet(tenant_id, values["rate_sheet_id"], values.get("currency"))
        except FieldError as e:
            raise FieldError("name", f"Not saved: {e.message}") from None
    tpl = AccountTemplate(tenant_id=tenant_id, name=name,
                          values={k: _plain(values.get(k)) for k in FIELDS if k in values})
    db.session.add(tpl)
    flush_or_conflict()
    audit.record("template.saved", tpl, name=name)
    return tpl


def templates_of(tenant_id: int) -> list[AccountTemplate]:
    return list(db.session.execute(
        select(AccountTemplate).where(AccountTemplate.tenant_id == tenant_id).order_by(AccountTemplate.name)
    ).scalars())


def delete_template(tpl: AccountTemplate) -> None:
    audit.record("template.deleted", tpl, name=tpl.name)
    db.session.delete(tpl)
