"""Stripe webhooks: verify the raw body, record the event once, apply it through the ledger.

The event row is inserted with ON CONFLICT DO NOTHING on the unique event id: ten concurrent
redeliveries block on the index until the first commits, then find it taken and change
nothing. Credits are ledger entries keyed `stripe:pay:<payment intent>` so a completion and
an async success of the same payment credit once; refunds are keyed by the cumulative
refunded amount, so partial refunds each debit their own difference exactly once.
"""
import json
import logging
from decimal import Decimal

import stripe
from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from app import ledger, money
from app.accounts.models import Account
from app.extensions import db
from app.jobs import enqueue
from app.payments.models import Payment, StripeSettings, WebhookEvent
from app.payments.secrets import decrypt
from tenants.models import utcnow

log = logging.getLogger(__name__)
TOLERANCE = 300


class BadSignature(ValueError):
    pass


def secret_for(webhook_key: str | None) -> tuple[str, int | None]:
    """The signing secret and the tenant of an endpoint (None key: the platform's)."""
    if webhook_key is None:
        return current_app.config.get("STRIPE_WEBHOOK_SECRET", ""), None
    row = db.session.execute(select(StripeSettings).where(StripeSettings.webhook_key == webhook_key)
                             .execution_options(all_tenants=True)).scalar_one_or_none()
    if row is None:
        raise LookupError(webhook_key)
    return decrypt(row.webhook_secret_encrypted), row.tenant_id


def verify(raw: bytes, header: str, secret: str):
    if not secret:
        raise BadSignature("no signing secret configured")
    try:
        stripe.Webhook.construct_event(raw, header or "", secret, tolerance=TOLERANCE)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise BadSignature(str(exc)) from exc
    # Plain dicts from here on (a StripeObject is no longer a dict in stripe 16).
    return json.loads(raw)


def from_minor(amount: int, currency: str) -> Decimal:
    return money.quantize(Decimal(int(amount)).scaleb(-money.minor_units(currency)), currency)


def record_event(event, endpoint_tenant_id: int | None, root_tenant_id: int) -> str:
    """Record and apply one verified event. Flushes, never commits. Returns the outcome."""
    obj = event["data"]["object"]
    pi = obj.get("payment_intent") if obj.get("object") != "payment_intent" else obj.get("id")
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new_id = db.session.execute(
        insert(WebhookEvent).values(
            tenant_id=endpoint_tenant_id or root_tenant_id, provider="stripe", event_id=event["id"],
            event_type=event["type"], status="processed", payment_intent_id=pi,
            payload=json.dumps(event), received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(WebhookEvent.id),
        execution_options={"all_tenants": True}).scalar()
    if new_id is None:
        return "duplicate"
    status, note = apply(event["type"], obj, endpoint_tenant_id)
    if status != "processed" or note:
        db.session.execute(WebhookEvent.__table__.update().where(WebhookEvent.id == new_id)
                           .values(status=status, note=note[:255]))
    if status == "ignored":
        log.info("stripe event %s of type %s acknowledged, not handled", event["id"], event["type"])
    return status


def _account_for(meta, endpoint_tenant_id):
    try:
        account_id = int((meta or {}).get("account_id"))
    except (TypeError, ValueError):
        return None
    q = select(Account).where(Account.id == account_id)
    if endpoint_tenant_id is not None:
        q = q.where(Account.tenant_id == endpoint_tenant_id)   # a reseller's Stripe pays its own accounts only
    return db.session.execute(q.execution_options(all_tenants=True)).scalar_one_or_none()


def _payment_by_intent(pi):
    if not pi:
        return None
    return db.session.execute(select(Payment).where(Payment.payment_intent_id == pi)
                              .execution_options(all_tenants=True).with_for_update()).scalars().first()


def apply(kind: str, obj, endpoint_tenant_id) -> tuple[str, str]:
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                "checkout.session.async_payment_failed"):
        return _checkout(kind, obj, endpoint_tenant_id)
    if kind == "checkout.session.expired":
        return _expired(obj, endpoint_tenant_id)
    if kind == "payment_intent.payment_failed":
        return _failed_attempt(obj, endpoint_tenant_id)
    if kind == "charge.refunded":
        return _refund(obj)
    if kind == "charge.dispute.created":
        return _dispute(obj)
    return "ignored", ""


def _session_payment(obj, account):
    ref = obj["id"]
    p = db.session.execute(select(Payment).where(Payment.tenant_id == account.tenant_id,
                                                 Payment.provider == "stripe", Payment.provider_ref == ref)
                           .execution_options(all_tenants=True).with_for_update()).scalar_one_or_none()
    if p is None:
        currency = (obj.get("currency") or account.currency).upper()
        meta = obj.get("metadata") or {}
        p = Payment(tenant_id=account.tenant_id, account_id=account.id, provider="stripe", provider_ref=ref,
                    purpose=meta.get("purpose", "topup"), currency=currency,
                    amount=from_minor(obj.get("amount_total") or 0, currency),
                    invoice_id=int(meta["invoice_id"]) if str(meta.get("invoice_id", "")).isdigit() else None)
        db.session.add(p)
    elif p.status == "pending" and obj.get("amount_total"):
        # A top-up started in the portal: what Stripe collected is what the balance gets.
        p.amount = from_minor(obj["amount_total"], p.currency)
    p.payment_intent_id = obj.get("payment_intent") or p.payment_intent_id
    return p


def _checkout(kind, obj, endpoint_tenant_id):
    account = _account_for(obj.get("metadata"), endpoint_tenant_id)
    if account is None:
        return "review", f"no account for checkout session {obj.get('id')}"
    p = _session_payment(obj, account)
    if kind.endswith("failed"):
        p.status, p.failure_message = "failed", "asynchronous payment failed"
        return "processed", ""
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        return "processed", "awaiting asynchronous payment"
    if account.status == "closed" or p.currency != account.currency.upper():
        p.status = "review"
        return "review", f"payment {p.provider_ref} held: account {account.status}, {p.currency}"
    credit(p, account)
    _replay_deferred(p.payment_intent_id)
    return "processed", ""


def _expired(obj, endpoint_tenant_id):
    """An abandoned Checkout Session: its pending payment will never be paid."""
    account = _account_for(obj.get("metadata"), endpoint_tenant_id)
    if account is None:
        return "processed", "expired session of an unknown account"
    p = db.session.execute(select(Payment).where(Payment.tenant_id == account.tenant_id, Payment.provider == "stripe",
                                                 Payment.provider_ref == obj["id"])
                           .execution_options(all_tenants=True).with_for_update()).scalar_one_or_none()
    if p is not None and p.status == "pending":
        p.status = "expired"
    return "processed", ""


def payment_key(p: Payment) -> str:
    """The ledger key of a payment's credit."""
    return f"stripe:pay:{p.payment_intent_id or p.provider_ref}" if p.provider == "stripe" else f"manual:{p.provider_ref}"


def credit(p: Payment, account: Account, *, created_by_id=None):
    """Credit a payment once through the ledger and queue its receipt email. Then invoicing
    (app/invoicing/receipts.on_credit): a prepaid top-up pays its taxes (tax included) and gets
    a numbered receipt; a postpaid payment goes to its invoice (or the oldest open ones)."""
    from app.invoicing.receipts import on_credit

    key = payment_key(p)
    db.session.flush()
    posted = ledger.post(account.id, p.amount, "payment", key, created_by_id=created_by_id,
                         description=f"Payment {p.reference or p.provider_ref}")
    if p.status in ("pending", "failed", "review", "expired"):
        p.status = "succeeded"
    p.ledger_entry_id, p.paid_at = posted.entry_id, p.paid_at or utcnow()
    if posted.created:
        db.session.flush()
        on_credit(account, posted, key, kind="payment", gross=p.amount, payment_id=p.id, invoice_id=p.invoice_id,
                  method=p.method, reference=p.reference or p.provider_ref, created_by_id=created_by_id)
        enqueue("workers.payments.send_receipt", p.id, p.tenant_id, job_id=f"receipt-{p.id}")
    return posted


def _failed_attempt(obj, endpoint_tenant_id):
    account = _account_for(obj.get("metadata"), endpoint_tenant_id)
    if account is None:
        return "review", f"failed attempt {obj.get('id')} for an unknown account"
    err = obj.get("last_payment_error") or {}
    currency = (obj.get("currency") or account.currency).upper()
    attempt = f"{obj['id']}:{err.get('charge') or err.get('code') or 'failed'}"
    if db.session.execute(select(Payment.id).where(Payment.tenant_id == account.tenant_id,
                                                   Payment.provider == "stripe", Payment.provider_ref == attempt)
                          .execution_options(all_tenants=True)).first() is None:
        db.session.add(Payment(tenant_id=account.tenant_id, account_id=account.id, provider="stripe",
                               provider_ref=attempt, status="failed", currency=currency,
                               amount=from_minor(obj.get("amount") or 0, currency),
                               failure_message=(err.get("message") or "payment failed")[:255]))
    return "processed", ""


def _refund(charge):
    p = _payment_by_intent(charge.get("payment_intent"))
    if p is None or p.status in ("pending", "review") or p.ledger_entry_id is None:
        return "deferred", "refund before its payment was credited"
    total = from_minor(charge.get("amount_refunded") or 0, p.currency)
    delta = total - p.refunded_amount
    if delta > 0:
        from app.invoicing.receipts import on_refund

        refund_key = f"stripe:refund:{charge['id']}:{total}"
        posted = ledger.post(p.account_id, -delta, "refund", refund_key, description=f"Refund of payment {p.provider_ref}")
        if posted.created:        # a prepaid top-up's taxes come back in proportion
            on_refund(p.account_id, payment_key(p), refund_key, gross=p.amount, refunded_before=p.refunded_amount,
                      refunded_now=total)
        p.refunded_amount = total
    p.status = "refunded" if p.refunded_amount >= p.amount else "partially_refunded"
    return "processed", ""


def _dispute(dispute):
    p = _payment_by_intent(dispute.get("payment_intent"))
    if p is None:
        return "deferred", "dispute before its payment was recorded"
    p.status = "disputed"
    p.disputed_amount = from_minor(dispute.get("amount") or 0, p.currency)
    return "processed", dispute.get("reason") or ""


def _replay_deferred(pi):
    """Events that came before their payment (refund before completion) apply now."""
    if not pi:
        return
    waiting = db.session.execute(select(WebhookEvent).where(WebhookEvent.payment_intent_id == pi,
                                                            WebhookEvent.status == "deferred")
                                 .order_by(WebhookEvent.id).execution_options(all_tenants=True)
                                 .with_for_update()).scalars().all()
    for ev in waiting:
        payload = json.loads(ev.payload)
        status, note = apply(ev.event_type, payload["data"]["object"], None)
        ev.status, ev.note = status, note
