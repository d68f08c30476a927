"""Manual payments: through the ledger once per reference, with a receipt email."""
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.money import MoneyError
from app.notifications.models import Notification
from app.payments.operations import record_manual_payment
from tenants.scope import tenant_scope, unscoped


def test_a_bank_transfer_credits_once_and_queues_a_receipt(world, app):
    from app.jobs import queue
    from app.payments.models import Payment
    from workers.payments import send_receipts

    queue(app).empty()
    with tenant_scope(world.a.id):
        start = db.session.scalar(select(Account.balance).where(Account.id == world.account_a.id))
        for _ in range(2):
            p = record_manual_payment(world.account_a.id, "40.00", method="bank_transfer", reference="TRF-1",
                                      paid_at=datetime(2026, 12, 1))
            db.session.commit()
        assert p.status == "succeeded" and p.ledger_entry_id
        assert db.session.scalar(select(Account.balance).where(Account.id == world.account_a.id)) == start + Decimal("40")
    jobs = queue(app).get_jobs()
    assert [j.func_name for j in jobs] == ["workers.payments.send_receipts"]  # one receipts job woken
    assert send_receipts() == 1                                              # what the worker runs
    assert send_receipts() == 0                                              # a second run: nothing due
    with unscoped():
        assert db.session.scalar(select(Payment.receipt_status)) == "queued"
        mails = db.session.execute(select(Notification).where(Notification.kind == "payment_received")).scalars().all()
        assert len(mails) == 1 and "TRF-1" in mails[0].body


@pytest.mark.parametrize("amount,method,ref", [("-5", "cash", "r"), ("5", "bitcoin", "r"), ("5", "cash", " ")])
def test_bad_input_is_refused_and_writes_nothing(world, amount, method, ref):
    with tenant_scope(world.a.id):
        with pytest.raises(MoneyError):
            record_manual_payment(world.account_a.id, amount, method=method, reference=ref, paid_at=datetime(2026, 12, 1))


def test_another_tenants_account_is_not_found(world):
    with tenant_scope(world.a.id):
        with pytest.raises(LookupError):
            record_manual_payment(world.account_b.id, "5", method="cash", reference="x", paid_at=datetime(2026, 12, 1))
