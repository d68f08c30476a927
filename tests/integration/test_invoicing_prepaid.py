"""Prepaid accounts (issue 17, points 1 and 4): taxes are paid at top-up, tax included; a refund
gives back the same share; every credit gets a numbered receipt; the monthly statement."""
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.ledger import balance_mismatches
from tenants.scope import tenant_scope, unscoped
from tests.integration.invoicing_support import (balance, call_at, dated, give_taxes, ledger_of, make_tax, plain,
                                                 post_at, run_documents)
from tests.integration.test_payments_webhooks import completed, event, hook, signed  # noqa: F401 (fixture)

D = Decimal


def _receipts(account_id):
    from app.invoicing.models import Receipt

    db.session.remove()
    with unscoped():
        return list(db.session.execute(select(Receipt).where(Receipt.account_id == account_id)
                                       .order_by(Receipt.id)).scalars())


@pytest.fixture
def prepaid(make_tenant, make_account):
    tenant = plain(make_tenant())
    a = dated(make_account(tenant, currency="GBP", name="Corner Shop"))
    vat = make_tax(tenant, "VAT 20%", "20")
    give_taxes(tenant, a.id, [vat])
    return tenant, a


def test_a_manual_payment_pays_its_tax_included_and_gets_a_receipt(prepaid):
    from app.payments.operations import record_manual_payment

    tenant, a = prepaid
    with tenant_scope(tenant.id):
        record_manual_payment(a.id, "10.00", method="bank_transfer", reference="BT-7", paid_at=datetime(2026, 12, 2))
        db.session.commit()
        # the same transfer typed twice: one credit, one tax, one receipt
        record_manual_payment(a.id, "10.00", method="bank_transfer", reference="BT-7", paid_at=datetime(2026, 12, 2))
        db.session.commit()
    entries = ledger_of(a.id)
    assert entries["manual:bank_transfer:BT-7"] == ("payment", D("10.00"))
    assert entries["tax:manual:bank_transfer:BT-7"] == ("tax", D("-1.67"))
    assert balance(a.id) == D("8.33")
    (r,) = _receipts(a.id)
    assert (r.number, r.kind, r.amount, r.net, r.tax_total, r.currency) == (
        "RCT-2026-000001", "payment", D("10.00"), D("8.33"), D("1.67"), "GBP")
    assert r.taxes == [{"tax_id": r.taxes[0]["tax_id"], "name": "VAT 20%", "rate": "20.0000", "compound": False,
                        "base": "8.33", "amount": "1.67"}]
    assert r.customer["name"] == "Corner Shop"
    # the payment-received email names the receipt and its taxes
    from app.notifications.models import Notification
    from app.payments.models import Payment
    from app.payments.receipts import send_receipt

    with unscoped():
        payment_id = db.session.execute(select(Payment.id).where(Payment.account_id == a.id)).scalar_one()
    send_receipt(payment_id, tenant.id)
    db.session.remove()
    with unscoped():
        body = db.session.execute(select(Notification.body).where(Notification.kind == "payment_received")
                                  .order_by(Notification.id.desc())).scalars().first()
    assert "Receipt RCT-2026-000001" in body and "VAT 20%: £1.67" in body and "Credited to the balance: £8.33" in body


def test_a_resellers_credit_gets_a_receipt_and_no_tax(prepaid):
    from app.accounts.models import Account
    from app.accounts.operations import adjust_balance

    tenant, a = prepaid
    with tenant_scope(tenant.id):
        account = db.session.execute(select(Account).where(Account.id == a.id)).scalar_one()
        adjust_balance(account, "credit", D("5.00"), "Welcome gift", nonce="n1")
        db.session.commit()
    assert balance(a.id) == D("5.00")
    assert not any(kind == "tax" for kind, _ in ledger_of(a.id).values())
    (r,) = _receipts(a.id)
    assert (r.kind, r.amount, r.net, r.tax_total, r.reference) == ("credit", D("5.00"), D("5.00"), D("0"), "Welcome gift")


def test_an_exempt_prepaid_account_pays_no_tax(prepaid):
    from app.payments.operations import record_manual_payment

    tenant, a = prepaid
    give_taxes(tenant, a.id, [], exempt=True, reason="Charity")
    with tenant_scope(tenant.id):
        record_manual_payment(a.id, "10.00", method="cash", reference="C1", paid_at=datetime(2026, 12, 2))
        db.session.commit()
    assert balance(a.id) == D("10.00")
    assert _receipts(a.id)[0].tax_total == 0


def test_stripe_top_up_then_partial_and_full_refunds_give_the_tax_back_in_proportion(hook, client, prepaid):  # noqa: F811
    tenant, a = prepaid
    account = type("A", (), {"id": a.id, "currency": "GBP"})
    body, headers = signed(completed("evt_1", account, cents=12000, pi="pi_9"))
    assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "processed"
    assert ledger_of(a.id)["tax:stripe:pay:pi_9"] == ("tax", D("-20.00"))
    assert balance(a.id) == D("100.00")
    # The receipt is numbered by the receipts job (woken after the commit), from the taxes the
    # credit paid, kept on the payment: not in the webhook's transaction.
    from app.payments.models import Payment
    from app.payments.receipts import send_due_receipts

    assert _receipts(a.id) == []
    with unscoped():
        kept = db.session.execute(select(Payment.receipt_taxes).where(Payment.account_id == a.id)).scalar_one()
    assert [(t["name"], t["base"], t["amount"]) for t in kept] == [("VAT 20%", "100.00", "20.00")]
    assert send_due_receipts() == 1 and send_due_receipts() == 0
    (r,) = _receipts(a.id)
    assert r.number.startswith("RCT-") and r.number.endswith("-000001")
    assert (r.amount, r.net, r.tax_total, r.kind) == (D("120.00"), D("100.00"), D("20.00"), "payment")
    assert r.taxes == kept and r.customer["name"] == "Corner Shop"
    for eid, refunded in (("evt_r1", 3000), ("evt_r2", 12000)):
        body, headers = signed(event(eid, "charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_9",
                                                              "amount_refunded": refunded}))
        assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "processed"
    entries = ledger_of(a.id)
    assert entries["tax:stripe:refund:ch_1:30.00"] == ("tax", D("5.00"))      # 30 of 120: a quarter of the tax
    assert entries["tax:stripe:refund:ch_1:120.00"] == ("tax", D("15.00"))
    assert balance(a.id) == D("0.00")                                        # all of it back: nothing left, nothing owed
    with unscoped():
        assert balance_mismatches() == []


def test_the_monthly_statement(prepaid):
    from app.invoicing.models import Statement, StatementLine

    tenant, a = prepaid
    post_at(a.id, "30.00", "payment", "manual:x:1", datetime(2026, 10, 20))
    post_at(a.id, "-5.00", "tax", "tax:manual:x:1", datetime(2026, 10, 20))
    post_at(a.id, "12.00", "payment", "manual:x:2", datetime(2026, 11, 3))
    post_at(a.id, "-2.00", "tax", "tax:manual:x:2", datetime(2026, 11, 3))
    post_at(a.id, "-4.00", "user_charge", "u-nov", datetime(2026, 11, 1, 0, 5))
    call_at(a, "FR", 120, "0.3000", datetime(2026, 11, 4))
    call_at(a, "FR", 60, "0.1500", datetime(2026, 11, 5))
    call_at(a, "DE", 60, "0.0123", datetime(2026, 11, 6))
    call_at(a, "DE", 60, "0.0100", datetime(2026, 12, 1, 0, 1))               # December: the next statement
    result = run_documents(tenant.id)
    assert result["statement"] == 1
    db.session.remove()
    with unscoped():
        s = db.session.execute(select(Statement).where(Statement.account_id == a.id)).scalar_one()
        assert (s.period_key, s.opening_balance, s.credits, s.charges, s.closing_balance) == (
            "2026-11", D("25.00"), D("12.00"), D("-6.4623"), D("30.5377"))
        lines = [(l.kind, l.description, l.country, l.calls, l.quantity, l.amount) for l in db.session.execute(
            select(StatementLine).where(StatementLine.statement_id == s.id).order_by(StatementLine.position)).scalars()]
    assert lines == [
        ("payment", "Payments (1)", None, None, None, D("12.00")),
        ("tax", "Taxes (1)", None, None, None, D("-2.00")),
        ("user_charge", "Users (1)", None, None, None, D("-4.00")),
        ("calls", "Calls to Germany", "DE", 1, D("1.0000"), D("-0.0123")),
        ("calls", "Calls to France", "FR", 2, D("3.0000"), D("-0.4500")),
    ]
    again = run_documents(tenant.id)
    assert again["this_job"] == 0
