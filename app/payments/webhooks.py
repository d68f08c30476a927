"""Stripe webhooks: verify the raw body, record the event once, apply it through the ledger.

The event row is inserted with ON CONFLICT DO NOTHING on the unique event id: ten concurrent
redeliveries block on the index until the first commits, then find it taken and change
nothing. Credits are ledger entries keyed `stripe:pay:<payment intent>` so a completion and
an async success of the same payment credit once; refunds are keyed by the cumulative
refunded amount, so partial refunds each debit their own difference exactly once.

The endpoint does the minimum in its transaction (bench/webhooks.py measures it): Core
statements on the tables, no ORM objects on the hot path. A redelivery is one INSERT that
finds its id taken. A paid Checkout Session is four statements between BEGIN and COMMIT: the
event INSERT that also reads the account (a CTE on PostgreSQL; two statements on SQLite), one
upsert of the payment (which also locks it), the ledger's post (one statement on PostgreSQL:
the entry and its one atomic UPDATE of the balance), one UPDATE of the payment (which also
marks its receipt due and tells whether refunds wait for it). The receipt email is a job,
woken after the commit with one Redis SET (app/payments/receipts.py), not an RQ enqueue per
payment.

A reseller's signing secret is read, decrypted and kept for SECRET_TTL seconds per process
(`secret_for`): saving the settings drops it in the saving process at once; a signature that
fails against a kept secret re-reads the row before answering 400, so a new secret works at
once everywhere and a replaced one is refused everywhere within SECRET_TTL.
"""
import functools
import json
import logging
import threading
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import NamedTuple

import stripe
from flask import current_app
from sqlalchemy import (JSON, Boolean, DateTime, Integer, String, and_, bindparam, case, event as sa_event, exists, func,
                        select, text, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import ledger, money
from app.accounts.models import Account
from app.extensions import db
from app.payments import receipts
from app.payments.models import Payment, StripeSettings, WebhookEvent, credit_key
from app.payments.secrets import decrypt
from tenants.models import Tenant, utcnow

log = logging.getLogger(__name__)
TOLERANCE = 300
SECRET_TTL = 10.0          # seconds a decrypted reseller secret is kept per process
RELOAD_AFTER_FAILURE = 1.0  # a failing signature re-reads the row at most this often per key

_events = WebhookEvent.__table__
_payments = Payment.__table__
_accounts = Account.__table__
_tenants = Tenant.__table__


class BadSignature(ValueError):
    pass


# --- the signing secret ------------------------------------------------------------------------

class _SecretCache:
    """webhook key -> (read at, secret, tenant id): a reseller's decrypted signing secret."""

    def __init__(self):
        self._rows: dict[str, tuple[float, str, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, max_age: float):
        hit = self._rows.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit
        return None

    def put(self, key: str, secret: str, tenant_id: int):
        with self._lock:
            self._rows[key] = (time.monotonic(), secret, tenant_id)

    def drop(self, key: str | None = None):
        with self._lock:
            if key is None:
                self._rows.clear()
            else:
                self._rows.pop(key, None)


_secrets = _SecretCache()


def secret_for(webhook_key: str | None, *, max_age: float | None = None) -> tuple[str, int | None]:
    """The signing secret and the tenant of an endpoint (None key: the platform's, from config).
    A reseller's is read again once older than `max_age` seconds (default SECRET_TTL).

    LookupError for a key no reseller has."""
    if webhook_key is None:
        return current_app.config.get("STRIPE_WEBHOOK_SECRET", ""), None
    hit = _secrets.get(webhook_key, SECRET_TTL if max_age is None else max_age)
    if hit is not None:
        return hit[1], hit[2]
    row = db.session.execute(select(StripeSettings.webhook_secret_encrypted, StripeSettings.tenant_id)
                             .where(StripeSettings.webhook_key == webhook_key)
                             .execution_options(all_tenants=True)).one_or_none()
    if row is None:
        _secrets.drop(webhook_key)
        raise LookupError(webhook_key)
    secret = decrypt(row[0])
    _secrets.put(webhook_key, secret, row[1])
    return secret, row[1]


def forget_secret(webhook_key: str | None = None) -> None:
    """Drop a kept secret (all of them without a key)."""
    _secrets.drop(webhook_key)


@sa_event.listens_for(Session, "after_flush")
def _settings_changed(session, flush_context):
    # Saved, added or deleted through the ORM in this process: its kept secret goes now and
    # again at the commit (a request in between may have read the row as it was).
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, StripeSettings):
            _secrets.drop(obj.webhook_key)
            session.info.setdefault("stripe_keys_changed", set()).add(obj.webhook_key)


@sa_event.listens_for(Session, "after_commit")
def _settings_committed(session):
    for key in session.info.pop("stripe_keys_changed", ()):
        _secrets.drop(key)


@sa_event.listens_for(Session, "after_rollback")
def _settings_rolled_back(session):
    session.info.pop("stripe_keys_changed", None)


def verified_event(webhook_key: str | None, raw: bytes, header: str) -> tuple[dict, int | None]:
    """The verified event of an endpoint and the endpoint's tenant.

    LookupError: no such endpoint; BadSignature: refused (nothing is to be written)."""
    secret, tenant_id = secret_for(webhook_key)
    try:
        return verify(raw, header, secret), tenant_id
    except BadSignature:
        if webhook_key is None or _secrets.get(webhook_key, RELOAD_AFTER_FAILURE) is not None:
            raise
    # The kept secret may be an old one: read the row again, once.
    secret, tenant_id = secret_for(webhook_key, max_age=0)
    return verify(raw, header, secret), tenant_id


def verify(raw: bytes, header: str, secret: str) -> dict:
    """Stripe's own scheme (stripe.WebhookSignature: HMAC-SHA256 of `<t>.<body>`, timestamp
    within TOLERANCE seconds) on the raw body, then the body as plain dicts.

    `stripe.Webhook.construct_event` does the same check and then builds a StripeObject tree
    that nothing here uses (about 15 times the cost of the check itself)."""
    if not secret:
        raise BadSignature("no signing secret configured")
    try:
        payload = raw.decode("utf-8")
        stripe.WebhookSignature.verify_header(payload, header or "", secret, TOLERANCE)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise BadSignature(str(exc)) from exc
    try:
        if not (isinstance(event["id"], str) and isinstance(event["type"], str)
                and isinstance(event["data"]["object"], dict)):
            raise TypeError
    except (KeyError, TypeError):
        raise BadSignature("not a Stripe event") from None
    return event


def from_minor(amount: int, currency: str) -> Decimal:
    return money.quantize(Decimal(int(amount)).scaleb(-money.minor_units(currency)), currency)


@functools.cache
def _statements(dialect: str):
    """The hot path's statements for one dialect (PostgreSQL, or the embedded SQLite), built
    once: building a Core statement per call cost more than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    ev, pay, acc = _events, _payments, _accounts
    root = select(_tenants.c.id).where(_tenants.c.parent_id.is_(None)).order_by(_tenants.c.id).limit(1)
    new_event = insert(ev).values(
        tenant_id=func.coalesce(bindparam("endpoint_tenant", type_=Integer), root.scalar_subquery()),
        provider="stripe", event_id=bindparam("e_id"), event_type=bindparam("e_type"), status="processed",
        payment_intent_id=bindparam("e_pi"), note="", payload=bindparam("e_payload"),
        received_at=bindparam("e_at", type_=DateTime)
    ).on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(ev.c.id)

    account_columns = (acc.c.id, acc.c.tenant_id, acc.c.currency, acc.c.status, acc.c.account_number,
                       acc.c.billing_type, acc.c.tax_exempt)
    account = select(*account_columns).where(acc.c.id == bindparam("a_id"))
    of_tenant = acc.c.tenant_id == bindparam("a_tenant")
    new_event_and_account = {}
    if dialect == "postgresql":
        # A checkout event's account comes back with the INSERT (one round trip less). No row:
        # the event id was taken.
        inserted = new_event.cte("inserted")
        for scoped in (False, True):
            on = and_(acc.c.id == bindparam("a_id"), of_tenant) if scoped else acc.c.id == bindparam("a_id")
            new_event_and_account[scoped] = select(inserted.c.id.label("event_row"), *account_columns) \
                .select_from(inserted.outerjoin(acc, on))

    upsert = insert(pay)
    upsert = upsert.on_conflict_do_update(
        index_elements=["tenant_id", "provider", "provider_ref"],
        set_={"amount": case((and_(pay.c.status == "pending", bindparam("collected", type_=Boolean)),
                              upsert.excluded.amount), else_=pay.c.amount),
              "payment_intent_id": func.coalesce(upsert.excluded.payment_intent_id, pay.c.payment_intent_id),
              "updated_at": upsert.excluded.updated_at},
    ).returning(pay.c.id, pay.c.tenant_id, pay.c.status, pay.c.amount, pay.c.currency, pay.c.provider_ref,
                pay.c.payment_intent_id, pay.c.reference, pay.c.provider, pay.c.invoice_id, pay.c.method)

    waiting = exists().where(ev.c.payment_intent_id == bindparam("c_pi"), ev.c.status == "deferred")
    credited = update(pay).where(pay.c.id == bindparam("c_id")).values(
        status=bindparam("c_status"), ledger_entry_id=bindparam("c_entry"),
        paid_at=func.coalesce(pay.c.paid_at, bindparam("c_at", type_=DateTime)),
        receipt_status=func.coalesce(bindparam("c_receipt", type_=String), pay.c.receipt_status),
        receipt_taxes=func.coalesce(bindparam("c_taxes", type_=JSON(none_as_null=True)), pay.c.receipt_taxes),
        updated_at=bindparam("c_at", type_=DateTime)).returning(waiting)
    return SimpleNamespace(new_event=new_event, new_event_and_account=new_event_and_account, account=account,
                           account_of_tenant=account.where(of_tenant), upsert_payment=upsert, credited=credited)


def _sql():
    return _statements(db.session.get_bind().dialect.name)


def _run(statement, params):
    """A hot-path Core statement on the session's connection (the session's own execute adds
    nothing to Core statements on tables but its cost)."""
    return db.session.connection().execute(statement, params)


# --- recording an event ------------------------------------------------------------------------

CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                   "checkout.session.async_payment_failed")
NOT_READ = object()


class AccountRow(NamedTuple):
    id: int
    tenant_id: int
    currency: str
    status: str
    account_number: str
    billing_type: str
    tax_exempt: bool


def record_event(event, endpoint_tenant_id: int | None) -> str:
    """Record and apply one verified event. Flushes, never commits. Returns the outcome.

    The event belongs to the endpoint's tenant, or to the platform (the root tenant)."""
    obj = event["data"]["object"]
    pi = obj.get("payment_intent") if obj.get("object") != "payment_intent" else obj.get("id")
    account_id = _account_id(obj.get("metadata")) if event["type"] in CHECKOUT_EVENTS else None
    new_id, account = _insert_event(event, pi if isinstance(pi, str) and pi else None, endpoint_tenant_id,
                                    account_id)
    if new_id is None:
        return "duplicate"
    _one_at_a_time(pi)
    status, note = apply(event["type"], obj, endpoint_tenant_id, account)
    if status != "processed" or note:
        db.session.execute(update(_events).where(_events.c.id == new_id).values(status=status, note=note[:255]))
    if status == "ignored":
        log.info("stripe event %s of type %s acknowledged, not handled", event["id"], event["type"])
    return status


_INTENT_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:pi, 18))")


def _one_at_a_time(pi) -> None:
    """The events of one payment intent apply one after the other (PostgreSQL: an advisory lock
    on the intent until the transaction ends, taken before any row lock). Without it a refund
    arriving while its payment is being credited was recorded "deferred" in a transaction the
    credit's replay could not see yet, and stayed deferred. SQLite writes one at a time anyway."""
    if isinstance(pi, str) and pi and db.session.get_bind().dialect.name == "postgresql":
        _run(_INTENT_LOCK, {"pi": pi})


def _insert_event(event, pi, endpoint_tenant_id, account_id):
    """(the new event row's id or None if the id was taken, the account of `account_id` as
    an AccountRow, None if there is none, or NOT_READ without an account id)."""
    sql = _sql()
    params = {"endpoint_tenant": endpoint_tenant_id, "e_id": event["id"], "e_type": event["type"][:80],
              "e_pi": pi, "e_payload": json.dumps(event), "e_at": utcnow()}
    if account_id is None:
        return _run(sql.new_event, params).scalar(), NOT_READ
    if not sql.new_event_and_account:                # SQLite: no INSERT inside a WITH
        new_id = _run(sql.new_event, params).scalar()
        return new_id, (None if new_id is None else _account_row(account_id, endpoint_tenant_id))
    scoped = endpoint_tenant_id is not None
    row = _run(sql.new_event_and_account[scoped], params | {"a_id": account_id, "a_tenant": endpoint_tenant_id}) \
        .one_or_none()
    if row is None:
        return None, None
    return row[0], (None if row[1] is None else AccountRow(*row[1:]))


def apply(kind: str, obj, endpoint_tenant_id, account=NOT_READ) -> tuple[str, str]:
    """Apply one event. `account`: the checkout session's account if the caller read it."""
    if kind in CHECKOUT_EVENTS:
        return _checkout(kind, obj, endpoint_tenant_id, account)
    if kind == "checkout.session.expired":
        return _expired(obj, endpoint_tenant_id)
    if kind == "payment_intent.payment_failed":
        return _failed_attempt(obj, endpoint_tenant_id)
    if kind == "charge.refunded":
        return _refund(obj)
    if kind == "charge.dispute.created":
        return _dispute(obj)
    return "ignored", ""


def _account_id(meta) -> int | None:
    try:
        return int((meta or {}).get("account_id"))
    except (TypeError, ValueError, AttributeError):
        return None


def _account_row(account_id, endpoint_tenant_id) -> AccountRow | None:
    """The session's account, or None. A reseller's own Stripe account pays its own accounts
    only."""
    if account_id is None:
        return None
    if endpoint_tenant_id is None:
        row = _run(_sql().account, {"a_id": account_id}).one_or_none()
    else:
        row = _run(_sql().account_of_tenant, {"a_id": account_id, "a_tenant": endpoint_tenant_id}).one_or_none()
    return None if row is None else AccountRow(*row)


def _account_for(meta, endpoint_tenant_id):
    """The session's Account object (the less frequent events), or None."""
    account_id = _account_id(meta)
    if account_id is None:
        return None
    q = select(Account).where(Account.id == account_id)
    if endpoint_tenant_id is not None:
        q = q.where(Account.tenant_id == endpoint_tenant_id)
    return db.session.execute(q.execution_options(all_tenants=True)).scalar_one_or_none()


def _payment_by_intent(pi):
    if not pi:
        return None
    return db.session.execute(select(Payment).where(Payment.payment_intent_id == pi)
                              .execution_options(all_tenants=True).with_for_update()).scalars().first()


# --- checkout sessions: the hot path -----------------------------------------------------------

def _session_payment(obj, account):
    """Upsert the session's payment row, locking it; returns the row after the upsert and the
    session's currency.

    New: recorded at what Stripe collected. A pending one (a top-up started in the portal):
    its amount becomes what Stripe collected. Otherwise only the payment intent is filled in."""
    currency = (obj.get("currency") or account.currency).upper()
    meta = obj.get("metadata") or {}
    collected = obj.get("amount_total")
    invoice = str(meta.get("invoice_id", ""))
    pi = obj.get("payment_intent")
    now = utcnow()
    row = _run(_sql().upsert_payment, {
        "tenant_id": account.tenant_id, "account_id": account.id, "provider": "stripe", "provider_ref": obj["id"],
        "purpose": str(meta.get("purpose") or "topup")[:16], "method": "card", "status": "pending",
        "currency": currency, "amount": from_minor(collected or 0, currency),
        "payment_intent_id": pi if isinstance(pi, str) and pi else None,
        "invoice_id": int(invoice) if invoice.isdigit() else None, "collected": bool(collected),
        "created_at": now, "updated_at": now}).one()
    return row, currency


def _set_payment(payment_id: int, **values):
    db.session.execute(update(_payments).where(_payments.c.id == payment_id).values(updated_at=utcnow(), **values))


def _checkout(kind, obj, endpoint_tenant_id, account=NOT_READ):
    if account is NOT_READ:
        account = _account_row(_account_id(obj.get("metadata")), endpoint_tenant_id)
    if account is None:
        return "review", f"no account for checkout session {obj.get('id')}"
    p, session_currency = _session_payment(obj, account)
    if kind.endswith("failed"):
        _set_payment(p.id, status="failed", failure_message="asynchronous payment failed")
        return "processed", ""
    if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
        return "processed", "awaiting asynchronous payment"
    if account.status == "closed" or p.currency != account.currency.upper() or p.currency != session_currency:
        _set_payment(p.id, status="review")
        return "review", f"payment {p.provider_ref} held: account {account.status}, {p.currency}"
    key = credit_key("stripe", p.payment_intent_id, p.provider_ref)
    facts = ledger.AccountFacts(account.tenant_id, account.currency, account.account_number)
    posted = ledger.post(account.id, p.amount, "payment", key, description=f"Payment {p.reference or p.provider_ref}",
                         facts=facts)
    taxes = None
    if posted.created and account.billing_type == "prepaid":
        # The top-up pays its taxes now (tax included); its numbered receipt is issued from
        # these lines by the receipts job: numbering would hold the tenant's series row locked
        # until this commit, one webhook of the tenant at a time.
        from app.invoicing.receipts import pay_taxes

        _, lines = pay_taxes(account.id, account.currency, p.amount, key, reference=p.reference or p.provider_ref,
                             exempt=account.tax_exempt, facts=facts)
        taxes = [line.as_dict() for line in lines]
    deferred = _run(_sql().credited, {
        "c_id": p.id, "c_entry": posted.entry_id, "c_pi": p.payment_intent_id, "c_at": utcnow(),
        "c_receipt": "due" if posted.created else None, "c_taxes": taxes,
        "c_status": "succeeded" if p.status in ("pending", "failed", "review", "expired") else p.status}).scalar()
    if posted.created:
        if account.billing_type != "prepaid":
            _invoicing_on_credit(account, p, posted)       # to its invoice, or the oldest open ones
        receipts.due(p.id, p.tenant_id)
    if deferred:
        _replay_deferred(p.payment_intent_id)
    return "processed", ""


def credit(p: Payment, account: Account, *, created_by_id=None):
    """Credit a Payment object once through the ledger and wake its receipt (manual payments)."""
    db.session.flush()
    posted = ledger.post(account.id, p.amount, "payment", credit_key(p.provider, p.payment_intent_id, p.provider_ref),
                         created_by_id=created_by_id, description=f"Payment {p.reference or p.provider_ref}")
    if p.status in ("pending", "failed", "review", "expired"):
        p.status = "succeeded"
    p.ledger_entry_id, p.paid_at = posted.entry_id, p.paid_at or utcnow()
    if posted.created:
        p.receipt_status = "due"
        db.session.flush()
        _invoicing_on_credit(account, p, posted, created_by_id=created_by_id)
        receipts.due(p.id, p.tenant_id)
    return posted


# --- the other events (less frequent: ORM objects) ---------------------------------------------

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


def payment_key(p) -> str:
    """The ledger key of a payment's credit (a Payment or a payment row)."""
    return credit_key(p.provider, p.payment_intent_id, p.provider_ref)


def _invoicing_on_credit(account, p, posted, *, created_by_id=None) -> None:
    """Invoicing's part of a new credit (app/invoicing/receipts.on_credit): a prepaid payment pays
    its taxes (tax included) and gets a numbered receipt; a postpaid payment goes to its invoice
    (or the oldest open ones). `account`: the Account, or the webhook's AccountRow (postpaid:
    only its id and billing type are read)."""
    from app.invoicing.receipts import on_credit

    on_credit(account, posted, payment_key(p), kind="payment", gross=p.amount, payment_id=p.id,
              invoice_id=p.invoice_id, method=p.method, reference=p.reference or p.provider_ref,
              created_by_id=created_by_id)


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
