"""Top-ups with Stripe Checkout: limits, the Checkout Session, the pending payment.

Nothing here credits money. `start_topup` creates a Checkout Session with the key of whoever
collects the money (the account's reseller if it has its own Stripe account, else the
platform) and records a *pending* payment keyed by the session id. Only the signed webhook
(app/payments/webhooks.py) credits it.

Double submissions: the top-up form carries a one-time nonce; the session is created with the
Stripe idempotency key `topup:<account>:<nonce>`, so a second click gets the same session back,
and the pending payment is inserted with ON CONFLICT DO NOTHING on (tenant, provider,
session id), so two concurrent clicks leave one row. Paying twice is impossible through one
session; each payment credits once by its payment intent.
"""
from dataclasses import dataclass
from decimal import Decimal

import stripe
from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from app import money
from app.accounts.models import Account
from app.extensions import db
from app.payments.models import Payment, StripeSettings
from app.payments.secrets import decrypt

DEFAULT_MIN, DEFAULT_MAX, DEFAULT_PRESETS = Decimal("5"), Decimal("500"), "10,25,50,100"
MAX_PRESETS = 6


class TopupError(ValueError):
    """A refusal fit to show next to the amount field."""


class NotConfigured(TopupError):
    pass


@dataclass(frozen=True)
class Limits:
    minimum: Decimal
    maximum: Decimal
    presets: tuple[Decimal, ...]


def settings_of(tenant_id: int) -> StripeSettings | None:
    return db.session.execute(select(StripeSettings).where(StripeSettings.tenant_id == tenant_id)
                              .execution_options(all_tenants=True)).scalar_one_or_none()


def parse_presets(text: str, currency: str = "USD") -> tuple[Decimal, ...]:
    """"10, 25,50" -> amounts, sorted, without repeats; MoneyError on a bad one."""
    out = set()
    for part in (text or "").split(","):
        if part.strip():
            value = money.parse_amount(part.strip(), currency)
            if value <= 0:
                raise money.MoneyError("Preset amounts must be more than zero.")
            out.add(money.quantize(value, currency))
    if len(out) > MAX_PRESETS:
        raise money.MoneyError(f"At most {MAX_PRESETS} preset amounts.")
    return tuple(sorted(out))


def limits_for(tenant_id: int, currency: str = "USD") -> Limits:
    """The account's reseller's top-up limits (defaults without a payments settings row).

    Presets outside min..max are not offered."""
    row = settings_of(tenant_id)
    if row is None:
        lo, hi, presets = DEFAULT_MIN, DEFAULT_MAX, DEFAULT_PRESETS
    else:
        lo, hi, presets = row.topup_min, row.topup_max, row.topup_presets
    lo, hi = money.quantize(lo, currency), money.quantize(hi, currency)
    try:
        amounts = parse_presets(presets, currency)
    except money.MoneyError:
        amounts = ()
    return Limits(lo, hi, tuple(a for a in amounts if lo <= a <= hi))


def secret_key_for(tenant_id: int) -> str:
    """The reseller's own secret key if it has one, else the platform's ('' if none)."""
    row = settings_of(tenant_id)
    own = decrypt(row.secret_key_encrypted) if row is not None else ""
    return own or current_app.config.get("STRIPE_SECRET_KEY", "")


def client_for(tenant_id: int) -> stripe.StripeClient:
    key = secret_key_for(tenant_id)
    if not key:
        raise NotConfigured("Online payments are not set up yet. Please ask your provider.")
    base = current_app.config.get("STRIPE_API_BASE")
    kwargs = {"base_addresses": {"api": base}} if base else {}
    return stripe.StripeClient(key, max_network_retries=0, **kwargs)


def check_amount(text, account: Account, limits: Limits) -> Decimal:
    """The typed amount, or TopupError with the reason (below the minimum, above the maximum)."""
    currency = account.currency.upper()
    if text is None or not str(text).strip():
        raise TopupError("Enter an amount to top up.")
    try:
        amount = money.parse_amount(str(text), currency)
    except money.MoneyError as e:
        raise TopupError(str(e)) from None
    amount = money.quantize(amount, currency)
    if amount <= 0:
        raise TopupError("Enter an amount to top up.")
    if amount < limits.minimum:
        raise TopupError(f"The smallest top-up is {money.format_money(limits.minimum, currency)}.")
    if amount > limits.maximum:
        raise TopupError(f"The largest top-up is {money.format_money(limits.maximum, currency)}.")
    return amount


def to_minor(amount: Decimal, currency: str) -> int:
    return int(money.quantize(amount, currency).scaleb(money.minor_units(currency)))


def start_topup(account_id: int, amount_text, *, nonce: str, success_url: str, cancel_url: str,
                created_by_id: int | None = None) -> tuple[Payment, str]:
    """Create (or, for the same nonce, find again) the Checkout Session and its pending payment.

    Returns (payment, checkout url). Flushes, never commits. TopupError for a refused amount,
    a closed account or a Stripe error (nothing written then)."""
    account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one_or_none()
    if account is None:
        raise LookupError(f"account {account_id} not found in this scope")
    if account.status == "closed":
        raise TopupError("This account is closed.")
    _check_nonce(nonce)
    currency = account.currency.upper()
    amount = check_amount(amount_text, account, limits_for(account.tenant_id, currency))
    session = _checkout_session(
        account, amount, currency, f"Top-up, account {account.account_number}", {"purpose": "topup"},
        success_url=success_url, cancel_url=cancel_url, idempotency_key=f"topup:{account.id}:{nonce}",
        refused="The card processor refused the top-up; please try again later.")
    payment = pending_payment(account, session.id, amount, currency, created_by_id=created_by_id)
    return payment, session.url


def _check_nonce(nonce: str) -> None:
    if not nonce or len(nonce) > 64 or not nonce.replace("-", "").isalnum():
        raise TopupError("The form expired; reload the page and try again.")


def _checkout_session(account: Account, amount: Decimal, currency: str, product: str, meta: dict, *,
                      success_url: str, cancel_url: str, idempotency_key: str, refused: str):
    """One Checkout Session for `amount` on the account's Stripe key (the same one again for
    the same idempotency key). TopupError with `refused` when Stripe refuses the request."""
    meta = {"account_id": str(account.id), **meta}
    params = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": currency.lower(), "unit_amount": to_minor(amount, currency), "product_data": {"name": product}}}],
        "success_url": success_url, "cancel_url": cancel_url,
        "client_reference_id": str(account.id),
        "metadata": meta, "payment_intent_data": {"metadata": meta},
    }
    if account.email:
        params["customer_email"] = account.email
    try:
        return client_for(account.tenant_id).v1.checkout.sessions.create(
            params=params, options={"idempotency_key": idempotency_key})
    except stripe.IdempotencyError:
        raise TopupError("This payment was already started with another amount; reload the page.") from None
    except stripe.InvalidRequestError:
        raise TopupError(refused) from None
    except stripe.StripeError:
        raise TopupError("The card processor cannot be reached; please try again in a minute.") from None


def pending_payment(account: Account, session_id: str, amount: Decimal, currency: str, *,
                    created_by_id=None, purpose: str = "topup", invoice_id: int | None = None) -> Payment:
    """The one pending payment of a Checkout Session (concurrent callers get the same row)."""
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(
        insert(Payment).values(
            tenant_id=account.tenant_id, account_id=account.id, provider="stripe", provider_ref=session_id,
            purpose=purpose, invoice_id=invoice_id, method="card", status="pending", amount=amount, currency=currency,
            refunded_amount=Decimal("0"), disputed_amount=Decimal("0"), reference="", failure_message="",
            created_by_id=created_by_id)
        .on_conflict_do_nothing(index_elements=["tenant_id", "provider", "provider_ref"]),
        execution_options={"all_tenants": True})
    return db.session.execute(select(Payment).where(Payment.tenant_id == account.tenant_id,
                                                    Payment.provider == "stripe",
                                                    Payment.provider_ref == session_id)
                              .execution_options(all_tenants=True)).scalar_one()


def start_invoice_payment(invoice_id: int, *, nonce: str, success_url: str, cancel_url: str,
                          created_by_id: int | None = None) -> tuple[Payment, str]:
    """Pay a bill (issue 18, point 2): a Checkout Session for the invoice's open amount, with
    metadata purpose=invoice and invoice_id, and its pending payment. Nothing is credited here:
    the webhook credits the balance and applies the payment to the invoice (`credit`).

    Idempotency key `invoice:<id>:<open amount in minor units>:<nonce>`: a double click gets the
    same session; a payment arriving meanwhile changes the open amount, so the next form starts
    a new session. Paying two sessions of one bill is a duplicate payment: the webhook applies
    what is still due and leaves the rest on the balance as credit. TopupError (nothing
    written) for a bill that is not open, a closed account or a Stripe error."""
    from app.invoicing.models import Invoice

    invoice = db.session.execute(select(Invoice).where(Invoice.id == invoice_id)).scalar_one_or_none()
    if invoice is None:
        raise LookupError(f"invoice {invoice_id} not found in this scope")
    account = db.session.execute(select(Account).where(Account.id == invoice.account_id)).scalar_one()
    if invoice.kind != "invoice" or invoice.status != "open":
        raise TopupError(f"This bill is {'a credit note' if invoice.kind != 'invoice' else invoice.status}: "
                         "there is nothing to pay.")
    currency = invoice.currency.upper()
    due = money.quantize(Decimal(invoice.total) - Decimal(invoice.amount_paid), currency)
    if due <= 0:
        raise TopupError("This bill is already paid.")
    if account.status == "closed":
        raise TopupError("This account is closed.")
    _check_nonce(nonce)
    session = _checkout_session(
        account, due, currency, f"Invoice {invoice.number}, account {account.account_number}",
        {"purpose": "invoice", "invoice_id": str(invoice.id)}, success_url=success_url, cancel_url=cancel_url,
        idempotency_key=f"invoice:{invoice.id}:{to_minor(due, currency)}:{nonce}",
        refused=f"The card processor refused a payment of {money.format_money(due, currency)}; "   # e.g. below its smallest charge
                "please pay it by bank transfer or with your next bill.")
    payment = pending_payment(account, session.id, due, currency, created_by_id=created_by_id,
                              purpose="invoice", invoice_id=invoice.id)
    return payment, session.url


def received(payment: Payment) -> bool:
    """Whether the webhook has credited this payment (what the success page waits for)."""
    return payment.ledger_entry_id is not None and payment.status not in ("pending", "failed", "review", "expired")
