"""Payment operations: plain functions taking ids; they flush, never commit."""
from datetime import datetime

from sqlalchemy import select

from app import money
from app.accounts.models import Account
from app.extensions import db
from app.payments.models import Payment
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
