"""Postpaid invoices (issue 17, points 2-3): lines from the closed period's ledger entries, taxes
in order and compounded, finalise (number, tax ledger entry, due date), the same period run
twice, a zero invoice skipped when asked, void through a credit note, payments applied."""
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing.schedule import Period
from app.conflicts import FieldError
from app.extensions import db
from app.ledger import balance_mismatches
from tenants.scope import tenant_scope, unscoped
from tests.integration.invoicing_support import (AFTER, PERIOD, balance, call_at, give_taxes, invoices_of, ledger_of,
                                                 make_postpaid, make_tax, plain, post_at, run_documents, set_settings)

D = Decimal
NOV = Period(date(2026, 11, 1), date(2026, 12, 1), PERIOD)


def _lines(invoice_id):
    from app.invoicing.invoices import lines_of, taxes_of

    db.session.remove()
    with unscoped():
        return ([(l.kind, l.description, l.country, l.calls, l.quantity, l.amount) for l in lines_of(invoice_id)],
                [(t.name, t.rate, t.compound, t.base, t.amount) for t in taxes_of(invoice_id)])


def _no_mismatch():
    db.session.remove()
    with unscoped():
        assert balance_mismatches() == []


@pytest.fixture
def november(make_tenant, make_account):
    """A postpaid account in New York with a month of activity around November's edges."""
    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant, tz="America/New_York", name="Harbour Cafe", company="Harbour Ltd",
                      address="1 Quay St", city="Portland", country="US", vat_number="US-99")
    # New York's November is [2026-11-01 04:00 UTC, 2026-12-01 05:00 UTC)
    post_at(a.id, "-7.00", "user_charge", "account:x:users:2026-10", datetime(2026, 11, 1, 3, 59), "October users")
    post_at(a.id, "-15.00", "user_charge", "account:x:users:2026-11", datetime(2026, 11, 1, 5, 0), "3 users, 2026-11")
    post_at(a.id, "-2.50", "number_charge", "account:x:number:1:2026-11", datetime(2026, 11, 1, 5, 0),
            "Number +4420 monthly")
    post_at(a.id, "-1.00", "adjustment", "adj-1", datetime(2026, 11, 10), "Debit: porting fee")
    post_at(a.id, "0.40", "adjustment", "adj-2", datetime(2026, 11, 11), "Credit: goodwill")
    post_at(a.id, "50.00", "payment", "manual:pay-1", datetime(2026, 11, 12), "Payment")   # never a line
    call_at(a, "GB", 60, "0.1234", datetime(2026, 11, 2))
    call_at(a, "GB", 90, "0.2000", datetime(2026, 11, 3))
    call_at(a, "GB", 30, "0.0500", datetime(2026, 11, 30, 23))
    call_at(a, "US", 120, "0.0201", datetime(2026, 12, 1, 4, 59))     # still 30 November in New York
    call_at(a, "US", 60, "0.0100", datetime(2026, 12, 1, 5, 0))       # December there: the next invoice
    return tenant, a


def test_lines_taxes_and_finalise(november):
    from app.invoicing.invoices import build_invoice, finalise_invoice

    tenant, a = november
    vat = make_tax(tenant, "VAT 20%", "20", position=1)
    levy = make_tax(tenant, "Levy", "1.5", position=2, compound=True)
    give_taxes(tenant, a.id, [vat, levy])
    with tenant_scope(tenant.id):
        draft = build_invoice(a.id, NOV)
        db.session.commit()
        assert draft.status == "draft" and draft.number is None
        draft_id = draft.id
    lines, taxes = _lines(draft_id)
    assert lines == [
        ("user_charge", "3 users, 2026-11", None, None, None, D("15.00")),
        ("number_charge", "Number +4420 monthly", None, None, None, D("2.50")),
        ("adjustment", "Debit: porting fee", None, None, None, D("1.00")),
        ("adjustment", "Credit: goodwill", None, None, None, D("-0.40")),
        ("calls", "Calls to United Kingdom", "GB", 3, D("3.0000"), D("0.37")),       # 0.3734 rounded once
        ("calls", "Calls to United States", "US", 1, D("2.0000"), D("0.02")),        # 0.0201
    ]
    subtotal = D("18.49")
    assert taxes == [("VAT 20%", D("20"), False, subtotal, D("3.70")),
                     ("Levy", D("1.5"), True, subtotal + D("3.70"), D("0.33"))]
    before = balance(a.id)
    with tenant_scope(tenant.id):
        inv = finalise_invoice(draft_id)
        db.session.commit()
        issued_day = inv.issued_at.date() if inv.issued_at.hour >= 5 else inv.issued_at.date() - timedelta(days=1)
        assert (inv.status, inv.number, inv.sequence) == ("open", "INV-2026-000001", 1)
        assert (inv.subtotal, inv.tax_total, inv.total) == (subtotal, D("4.03"), D("22.52"))
        assert inv.due_date == issued_day + timedelta(days=14)
        assert inv.customer["company"] == "Harbour Ltd" and inv.customer["tax_number"] == "US-99"
        assert inv.seller["legal_name"] == tenant.name
    entries = ledger_of(a.id)
    assert entries[f"invoice:{draft_id}:tax"] == ("tax", D("-4.03"))
    # the period's line entries were -18.4935: 0.0035 more than the invoice says, given back
    assert entries[f"invoice:{draft_id}:rounding"] == ("invoice", D("0.0035"))
    assert balance(a.id) == before - D("4.03") + D("0.0035")
    period_entries = sum(amount for key, (kind, amount) in entries.items()
                         if kind in ("user_charge", "number_charge", "adjustment", "call")
                         and key not in ("account:x:users:2026-10",) and amount and key != "call:5")
    assert period_entries + D("-4.03") + D("0.0035") == -D("22.52")      # the period moved the balance by -total
    _no_mismatch()
    with tenant_scope(tenant.id), pytest.raises(FieldError, match="already issued"):
        finalise_invoice(draft_id)


def test_the_same_period_run_twice_gives_the_same_invoices(november, make_account):
    from app.invoicing.models import InvoiceSequence

    tenant, a = november
    b = make_postpaid(make_account, tenant)
    post_at(b.id, "-9.99", "recurring", "extra-b", datetime(2026, 11, 15), "Support")
    first = run_documents(tenant.id)
    assert (first["invoiced"], first["skipped"], first["failed"], first["finished"]) == (2, 0, 0, True)
    snapshot = {i.account_id: (i.id, i.number, i.total) for i in invoices_of(a.id) + invoices_of(b.id)}
    ledger_before = {**ledger_of(a.id), **ledger_of(b.id)}
    again = run_documents(tenant.id)
    assert again["this_job"] == 0 and again["invoiced"] == 2
    # A fresh run row (as if the marks were lost): the unique invoice per period holds.
    with unscoped():
        from app.invoicing.models import InvoiceRun, InvoiceRunAccount

        db.session.execute(InvoiceRunAccount.__table__.delete())
        db.session.execute(InvoiceRun.__table__.delete())
        db.session.commit()
    third = run_documents(tenant.id)
    assert third["invoiced"] == 2
    assert {i.account_id: (i.id, i.number, i.total) for i in invoices_of(a.id) + invoices_of(b.id)} == snapshot
    assert sorted(n for _, n, _ in snapshot.values()) == ["INV-2026-000001", "INV-2026-000002"]
    assert {**ledger_of(a.id), **ledger_of(b.id)} == ledger_before
    with unscoped():
        assert db.session.execute(select(InvoiceSequence.last_number)).scalar_one() == 2
    _no_mismatch()


def test_a_zero_invoice_is_skipped_when_asked_and_not_retried(make_tenant, make_account):
    from app.invoicing.runs import remaining, start_run

    tenant = plain(make_tenant())
    idle = make_postpaid(make_account, tenant)
    busy = make_postpaid(make_account, tenant)
    post_at(busy.id, "-3.00", "user_charge", "u-busy", datetime(2026, 11, 5))
    result = run_documents(tenant.id)
    assert (result["invoiced"], result["skipped"]) == (1, 1)
    assert invoices_of(idle.id) == []
    with tenant_scope(tenant.id):
        assert remaining(start_run(tenant.id, PERIOD, datetime.fromisoformat(AFTER))) == 0   # handled, not retried
        db.session.rollback()
    # The tenant wants zero invoices too: a later period issues one, paid at once (nothing due).
    set_settings(tenant, skip_zero=False)
    result = run_documents(tenant.id, "2026-10", now=AFTER)
    assert result["invoiced"] == 2
    zero = invoices_of(idle.id)[0]
    assert (zero.period_key, zero.total, zero.status, zero.number) == ("2026-10", D("0"), "paid", "INV-2026-000002")


def test_void_through_a_credit_note(november):
    from app.invoicing.invoices import build_invoice, finalise_invoice, void_invoice

    tenant, a = november
    give_taxes(tenant, a.id, [make_tax(tenant, "VAT", "10")])
    with tenant_scope(tenant.id):
        inv = finalise_invoice(build_invoice(a.id, NOV).id)
        db.session.commit()
        inv_id, number, total, tax = inv.id, inv.number, inv.total, inv.tax_total
    before = balance(a.id)
    with tenant_scope(tenant.id):
        with pytest.raises(FieldError) as e:
            void_invoice(inv_id, "  ")
        assert e.value.field == "reason"
        note = void_invoice(inv_id, "Wrong company name")
        db.session.commit()
        assert (note.kind, note.number, note.credit_note_for_id, note.status) == (
            "credit_note", "INV-2026-000002", inv_id, "paid")
        assert (note.subtotal, note.tax_total, note.total) == (-(total - tax), -tax, -total)
        note_id = note.id
    voided = [i for i in invoices_of(a.id) if i.id == inv_id][0]
    assert (voided.status, voided.void_reason, voided.number, voided.total) == ("void", "Wrong company name", number, total)
    assert voided.voided_at is not None
    note_lines, note_taxes = _lines(note_id)
    inv_lines, inv_taxes = _lines(inv_id)
    assert [l[-1] for l in note_lines] == [-l[-1] for l in inv_lines]
    assert [t[-1] for t in note_taxes] == [-t[-1] for t in inv_taxes]
    assert ledger_of(a.id)[f"invoice:{inv_id}:void"] == ("invoice", total)
    assert balance(a.id) == before + total
    with tenant_scope(tenant.id):
        with pytest.raises(FieldError, match="already void"):
            void_invoice(inv_id, "again")
        with pytest.raises(FieldError, match="credit note cannot"):
            void_invoice(note_id, "again")
    _no_mismatch()


def test_payments_partial_then_over_never_lose_money(november):
    from app.invoicing.invoices import apply_invoice_payment, build_invoice, finalise_invoice, record_invoice_payment

    tenant, a = november
    with tenant_scope(tenant.id):
        inv = finalise_invoice(build_invoice(a.id, NOV).id)
        db.session.commit()
        inv_id, total = inv.id, inv.total
    start = balance(a.id)
    when = datetime(2026, 12, 3)
    with tenant_scope(tenant.id):
        record_invoice_payment(inv_id, "10.00", method="bank_transfer", reference="T-1", paid_at=when)
        db.session.commit()
    inv = invoices_of(a.id)[0]
    assert (inv.status, inv.amount_paid, inv.amount_due) == ("open", D("10.00"), total - D("10.00"))
    with tenant_scope(tenant.id):
        record_invoice_payment(inv_id, str((total - D("10.00") + D("5.00")).quantize(D("0.01"))), method="bank_transfer",
                               reference="T-2", paid_at=when)
        db.session.commit()
        # the same transfer typed again, and the same ledger key applied again: nothing changes
        record_invoice_payment(inv_id, "999.00", method="bank_transfer", reference="T-2", paid_at=when)
        again = apply_invoice_payment(inv_id, "1.00", key="manual:bank_transfer:T-2")
        db.session.commit()
    assert not again.created
    inv = invoices_of(a.id)[0]
    assert (inv.status, inv.amount_paid) == ("paid", total) and inv.paid_at is not None
    # every cent paid is on the balance: the 5.00 beyond the invoice stays as credit
    assert balance(a.id) == start + total + D("5.00")
    _no_mismatch()


def test_a_postpaid_payment_without_invoice_goes_to_the_oldest_open_ones(make_tenant, make_account):
    from app.payments.operations import record_manual_payment

    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant)
    post_at(a.id, "-10.00", "user_charge", "u-oct", datetime(2026, 10, 5))
    post_at(a.id, "-20.00", "user_charge", "u-nov", datetime(2026, 11, 5))
    run_documents(tenant.id, "2026-10")
    run_documents(tenant.id, "2026-11")
    with tenant_scope(tenant.id):
        record_manual_payment(a.id, "25.00", method="cash", reference="R1", paid_at=datetime(2026, 12, 2))
        db.session.commit()
    oct_, nov = invoices_of(a.id)
    assert (oct_.status, oct_.amount_paid, nov.status, nov.amount_paid) == ("paid", D("10.00"), "open", D("15.00"))
    assert balance(a.id) == D("-5.00")


def test_a_tax_exempt_account_pays_no_tax(make_tenant, make_account):
    from app.invoicing.invoices import build_invoice

    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant)
    vat = make_tax(tenant, "VAT", "20")
    give_taxes(tenant, a.id, [vat], exempt=True, reason="Intra-EU reverse charge")
    post_at(a.id, "-10.00", "user_charge", "u", datetime(2026, 11, 5))
    with tenant_scope(tenant.id):
        inv = build_invoice(a.id, NOV)
        assert (inv.tax_total, inv.total, inv.tax_exempt_reason) == (D("0"), D("10.00"), "Intra-EU reverse charge")
        with pytest.raises(FieldError) as e:
            from app.invoicing.taxes import set_account_taxes

            set_account_taxes(inv_account(a.id), [vat], exempt=True, reason="")
        assert e.value.field == "tax_exempt_reason"


def inv_account(account_id):
    from app.accounts.models import Account

    return db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()


def test_an_open_period_and_a_prepaid_account_get_no_invoice(make_tenant, make_account):
    from app.invoicing.invoices import build_invoice

    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant)
    p = make_account(tenant).id
    with tenant_scope(tenant.id):
        with pytest.raises(FieldError, match="has not ended"):
            build_invoice(a.id, Period(date(2026, 12, 1), date(2027, 1, 1), "2026-12"))
        with pytest.raises(FieldError, match="Only postpaid"):
            build_invoice(p, NOV)
        assert db.session.execute(select(func.count()).select_from(
            __import__("app.invoicing.models", fromlist=["Invoice"]).Invoice)).scalar_one() == 0
