"""Payment operations: plain functions taking ids; they flush, never commit."""
import secrets
from datetime import datetime

from sqlalchemy import select

from app import audit, money
from app.accounts.models import Account
from app.extensions import db
from app.conflicts import FieldError
from app.payments.checkout import parse_presets
from app.payments.models import Payment, StripeSettings
from app.payments.secrets import encrypt
from app.payments.webhooks import credit

MANUAL_METHODS = ("bank_transfer", "cash", "cheque")


def record_manual_payment(account_id: int, amount, *, method: str, reference: str, paid_at: datetime,
                          invoice_id: int | None = None, created_by_id: int | None = None) -> Payment:
    """A bank transfer or cash payment typed in by the reseller: same ledger and receipt path.

    The reference is the natural key (unique per tenant): recording it twice credits once."""
    account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one_or_none()
    if account is None:
        raise LookupError(f"account {account_id} not found in this scope")
    if method not in MANUAL_METHODS:
        raise money.MoneyError(f"method must be one of {', '.join(MANUAL_METHODS)}")
    reference = (reference or "").strip()
    if not reference:
        raise money.MoneyError("a reference is required")
    amount = money.parse_amount(str(amount), account.currency)
    if amount <= 0:
        raise money.MoneyError("the amount must be more than zero")
    ref = f"{method}:{reference}"[:120]
    p = db.session.execute(select(Payment).where(Payment.provider == "manual", Payment.provider_ref == ref,
                                                 Payment.tenant_id == account.tenant_id)).scalar_one_or_none()
    if p is not None:
        return p
    p = Payment(tenant_id=account.tenant_id, account_id=account.id, provider="manual", method=method,
                purpose="invoice" if invoice_id else "topup", invoice_id=invoice_id, provider_ref=ref,
                reference=reference, amount=amount, currency=account.currency.upper(), paid_at=paid_at,
                created_by_id=created_by_id)
    db.session.add(p)
    credit(p, account, created_by_id=created_by_id)
    return p


def save_stripe_settings(tenant_id: int, *, publishable_key: str = "", secret_key: str = "", webhook_secret: str = "",
                         remove_keys: bool = False, topup_min, topup_max, presets: str,
                         currency: str = "USD") -> StripeSettings:
    """A reseller's own Stripe account and its top-up limits. Blank key fields keep the stored
    ones (secrets are never shown back); `remove_keys` goes back to the platform's account.

    FieldError (nothing written) for a key of the wrong kind or limits that do not fit."""
    publishable_key, secret_key, webhook_secret = (v.strip() for v in (publishable_key, secret_key, webhook_secret))
    if publishable_key and not publishable_key.startswith("pk_"):
        raise FieldError("publishable_key", "A publishable key starts with pk_.")
    if secret_key and not secret_key.startswith(("sk_", "rk_")):
        raise FieldError("secret_key", "A secret key starts with sk_ (or rk_ for a restricted key).")
    if webhook_secret and not webhook_secret.startswith("whsec_"):
        raise FieldError("webhook_secret", "A webhook signing secret starts with whsec_.")
    lo, hi = money.quantize(topup_min, currency), money.quantize(topup_max, currency)
    if lo <= 0:
        raise FieldError("topup_min", "The smallest top-up must be more than zero.")
    if hi < lo:
        raise FieldError("topup_max", "The largest top-up cannot be below the smallest.")
    try:
        amounts = parse_presets(presets, currency)
    except money.MoneyError as e:
        raise FieldError("presets", str(e)) from None
    outside = [a for a in amounts if not lo <= a <= hi]
    if outside:
        raise FieldError("presets", f"{money.format_money(outside[0], currency)} is outside the limits.")
    row = db.session.execute(select(StripeSettings).where(StripeSettings.tenant_id == tenant_id)
                             .execution_options(all_tenants=True)).scalar_one_or_none()
    has_secret = not remove_keys and bool(secret_key or (row and row.secret_key_encrypted))
    has_hook = not remove_keys and bool(webhook_secret or (row and row.webhook_secret_encrypted))
    if has_secret != has_hook:
        raise FieldError("webhook_secret" if has_secret else "secret_key",
                         "Enter both the secret key and the webhook signing secret of your Stripe account.")
    if row is None:
        row = StripeSettings(tenant_id=tenant_id, webhook_key=secrets.token_urlsafe(24))
        db.session.add(row)
    if remove_keys:
        row.secret_key_encrypted = row.webhook_secret_encrypted = row.publishable_key = ""
    else:
        if publishable_key:
            row.publishable_key = publishable_key
        if secret_key:
            row.secret_key_encrypted = encrypt(secret_key)
        if webhook_secret:
            row.webhook_secret_encrypted = encrypt(webhook_secret)
    row.topup_min, row.topup_max = lo, hi
    row.topup_presets = ",".join(str(a) for a in amounts)
    db.session.flush()
    audit.record("payments.settings_changed", row, own_stripe=bool(row.secret_key_encrypted),
                 topup_min=str(lo), topup_max=str(hi), presets=row.topup_presets)
    return row
