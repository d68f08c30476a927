"""Payment attempts, received webhook events and per-tenant Stripe settings."""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import AccountOwned, TenantOwned
from tenants.models import utcnow

STATUSES = ("pending", "succeeded", "failed", "refunded", "partially_refunded", "disputed", "review", "expired")


class Payment(AccountOwned, db.Model):
    """One payment attempt: every try is a row, failed ones included.

    `provider_ref` is the provider's id of the attempt (Checkout Session, or the failing event
    for a failed try; a manual payment's own reference), unique per tenant and provider.
    `invoice_id` names the bill it pays once invoices exist (no FK yet: no invoices table)."""
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider", "provider_ref"),
        Index("ix_payments_tenant_created", "tenant_id", "created_at"),
        # The receipts job's work list: the few payments whose receipt is still to be queued.
        Index("ix_payments_receipt_due", "id", postgresql_where=text("receipt_status = 'due'"),
              sqlite_where=text("receipt_status = 'due'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))          # stripe | manual
    purpose: Mapped[str] = mapped_column(String(16), default="topup")  # topup | invoice
    method: Mapped[str] = mapped_column(String(24), default="card")    # card | bank_transfer | cash
    status: Mapped[str] = mapped_column(String(20), default="pending")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE))
    currency: Mapped[str] = mapped_column(String(3))
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE), default=Decimal("0"))
    disputed_amount: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE), default=Decimal("0"))
    provider_ref: Mapped[str] = mapped_column(String(120))
    payment_intent_id: Mapped[str | None] = mapped_column(String(120), index=True)
    invoice_id: Mapped[int | None] = mapped_column()
    reference: Mapped[str] = mapped_column(String(120), default="")
    failure_message: Mapped[str] = mapped_column(String(255), default="")
    ledger_entry_id: Mapped[int | None] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column()
    # The receipt email: "" none (not credited, or from before receipts were tracked), "due"
    # (credited; the receipts job queues it), "queued" (in the notification outbox).
    receipt_status: Mapped[str] = mapped_column(String(8), default="", server_default="")
    # A prepaid card top-up's taxes as computed when it was credited (TaxLine.as_dict each):
    # its numbered receipt is issued by the receipts job from them, off the webhook's path.
    # None: no receipt left to issue (postpaid, or issued with the credit).
    receipt_taxes: Mapped[list | None] = mapped_column(JSON(none_as_null=True))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(TenantOwned, db.Model):
    """A provider event as received. The event id is unique: a redelivery finds it taken.

    status: processed | ignored (unknown type) | deferred (waits for its payment, e.g. a
    refund that arrived before the completion) | review (unknown or closed account)."""
    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), default="stripe")
    event_id: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="processed")
    payment_intent_id: Mapped[str | None] = mapped_column(String(120), index=True)
    note: Mapped[str] = mapped_column(String(255), default="")
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeSettings(TenantOwned, db.Model):
    """A reseller's own Stripe account; its secrets are Fernet tokens (app/payments/secrets.py).

    `webhook_key` is the path part of /webhooks/stripe/<key>; top-up limits live here too."""
    __tablename__ = "stripe_settings"
    __table_args__ = (UniqueConstraint("tenant_id"), UniqueConstraint("webhook_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_key: Mapped[str] = mapped_column(String(64))
    secret_key_encrypted: Mapped[str] = mapped_column(Text, default="")
    publishable_key: Mapped[str] = mapped_column(String(255), default="")
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text, default="")
    topup_min: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE), default=Decimal("5"))
    topup_max: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE), default=Decimal("500"))
    topup_presets: Mapped[str] = mapped_column(String(120), default="10,25,50,100")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def credit_key(provider: str, payment_intent_id: str | None, provider_ref: str) -> str:
    """The ledger key of a payment's credit: one credit per Stripe payment intent (a completion
    and an async success of one payment), one per reference for a manual payment."""
    return f"stripe:pay:{payment_intent_id or provider_ref}" if provider == "stripe" else f"manual:{provider_ref}"
