"""The Stripe webhook on the embedded default (SQLite, jobs in-process, no Redis): the same
outcomes through the statements' SQLite forms (no INSERT inside WITH there)."""
import json
import time
from decimal import Decimal

import stripe
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from tests.conftest import TestConfig

SECRET = "whsec_embedded"


def test_the_webhook_credits_once_and_queues_the_receipt_on_sqlite(tmp_path):
    from app.accounts.models import Account
    from app.accounts.operations import create_account
    from app.cli.demo import ensure_platform
    from app.ledger import LedgerEntry, balance_mismatches
    from app.notifications.models import Notification
    from app.payments.models import Payment, WebhookEvent
    from app.resellers.operations import create_tenant
    from tenants.scope import unscoped

    class Embedded(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'embedded.db'}"
        SQLALCHEMY_ENGINE_OPTIONS = {}
        REDIS_URL = None
        STRIPE_WEBHOOK_SECRET = SECRET

    app = create_app(Embedded)
    with app.app_context():
        db.create_all()
        with unscoped():
            root = ensure_platform()
            db.session.commit()
            tenant = create_tenant(name="Embedded Voice", slug="embedded", parent_id=root.id, email="e@r.example")
            db.session.commit()
            account = create_account(tenant_id=tenant.id, name="Local", email="local@c.example",
                                     initial_credit=Decimal("1"))
            db.session.commit()
            account_id, currency = account.id, account.currency
        client = app.test_client()

        def send(eid, account, cents=1500, session="cs_e", pi="pi_e"):
            body = json.dumps({"id": eid, "object": "event", "type": "checkout.session.completed", "data": {"object": {
                "id": session, "object": "checkout.session", "amount_total": cents, "currency": currency.lower(),
                "payment_status": "paid", "payment_intent": pi, "metadata": {"account_id": str(account)}}}})
            header = stripe.WebhookSignature.generate_signature_header(body, SECRET, timestamp=int(time.time()))
            return client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header}).json["outcome"]

        assert send("evt_e1", account_id) == "processed"
        assert send("evt_e1", account_id) == "duplicate"
        assert send("evt_e2", 999999, session="cs_x", pi="pi_x") == "review"        # unknown account: kept
        db.session.remove()
        with unscoped():
            assert db.session.scalar(select(Account.balance).where(Account.id == account_id)) == Decimal("16.00")
            assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                     .where(LedgerEntry.kind == "payment")) == 1
            p = db.session.execute(select(Payment)).scalar_one()
            assert (p.status, p.amount, p.receipt_status) == ("succeeded", Decimal("15.00"), "queued")
            mail = db.session.execute(select(Notification).where(Notification.kind == "payment_received")).scalar_one()
            assert "$15.00" in mail.body
            assert dict(db.session.execute(select(WebhookEvent.event_id, WebhookEvent.status)).all()) == {
                "evt_e1": "processed", "evt_e2": "review"}
            assert balance_mismatches() == []
        db.session.remove()
        db.engine.dispose()
