"""Documents to render in tests: an issued invoice (with lines, taxes, the ledger entries and
calls behind its call lines), a credit note, a statement and a receipt, written as rows (what
the invoicing run writes), so the documents' tests do not depend on how the run builds them."""
import itertools
from datetime import date, datetime
from decimal import Decimal

from app import money
from app.extensions import db
from app.invoicing.models import (Invoice, InvoiceLine, InvoiceSettings, InvoiceTax, Receipt, Statement,
                                  StatementLine)
from tenants.scope import unscoped

SELLER = {"legal_name": "Acme Telecom GmbH", "address": "Hauptstraße 12\n10115 Berlin\nGermany",
          "tax_number": "DE123456789", "email": "billing@acme.example"}
# 1×1 PNG
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082")


# A wordmark to look at in the rendered documents.
LOGO_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="270" height="56" viewBox="0 0 270 56">'
            b'<rect x="0" y="4" width="48" height="48" rx="10" fill="#1d4ed8"/>'
            b'<path d="M12 40 L24 14 L36 40 M17 30 H31" stroke="#fff" stroke-width="5" fill="none" '
            b'stroke-linecap="round" stroke-linejoin="round"/>'
            b'<text x="60" y="38" font-family="DejaVu Sans" font-size="26" font-weight="bold" fill="#111827">'
            b'Acme Telecom</text></svg>')


def settings(tenant, **values) -> InvoiceSettings:
    with unscoped():
        row = InvoiceSettings(tenant_id=tenant.id, **{**InvoiceSettings.DEFAULTS, **SELLER, **values})
        db.session.add(row)
        db.session.commit()
        return row


_sheets = itertools.count(1)


def rated_calls(account, sheet_rates, calls, when: datetime):
    """Calls of `account` rated at `when`, each with its ledger debit `call:<id>`.

    sheet_rates: [(prefix, country, description, per_minute)], calls: [(prefix, seconds, cost)]."""
    from app import ledger
    from app.calls.models import Call
    from app.rating.models import Rate, RateSheet

    with unscoped():
        sheet = RateSheet(tenant_id=account.tenant_id, name=f"Docs sheet {account.id} {next(_sheets)}",
                          currency=account.currency)
        db.session.add(sheet)
        db.session.flush()
        rates = {}
        for prefix, country, description, per_minute in sheet_rates:
            rate = Rate(tenant_id=account.tenant_id, rate_sheet_id=sheet.id, prefix=prefix, country=country,
                        description=description, rate_per_minute=Decimal(per_minute))
            db.session.add(rate)
            db.session.flush()
            rates[prefix] = rate
        keys = []
        for n, (prefix, seconds, cost) in enumerate(calls):
            rate = rates[prefix]
            call = Call(tenant_id=account.tenant_id, account_id=account.id, server="pbx1",
                        uniqueid=f"docs-{account.id}-{sheet.id}-{n}", destination=prefix + "123456", started_at=when,
                        billsec=seconds, charged_seconds=seconds, disposition="ANSWERED", country=rate.country,
                        rate_id=rate.id, cost=Decimal(cost), rated_at=when)
            db.session.add(call)
            db.session.flush()
            ledger.post(account.id, -Decimal(cost), "call", f"call:{call.id}", places=4)
            keys.append(f"call:{call.id}")
        from sqlalchemy import update

        from app.ledger import LedgerEntry
        db.session.execute(update(LedgerEntry).where(LedgerEntry.account_id == account.id,
                                                     LedgerEntry.idempotency_key.in_(keys)).values(created_at=when))
        db.session.commit()


def invoice(account, *, number="ACME-2026-000123", status="open", period=(date(2026, 11, 1), date(2026, 12, 1)),
            lines=None, taxes=None, amount_paid="0", issued_at=datetime(2026, 12, 1, 6, 0), due_date=date(2026, 12, 15),
            currency=None, kind="invoice", credit_note_for_id=None, void_reason="", voided_at=None,
            tax_exempt_reason="") -> Invoice:
    lines = lines if lines is not None else [
        ("recurring", "Service plan Business (monthly)", None, "1", "49.00", "49.00"),
        ("user_charge", "Users × 12 at 4.50", None, "12", "4.50", "54.00"),
        ("calls", "Calls to United Kingdom", 3, "4.5", "0.0500", "0.2250"),
    ]
    taxes = taxes if taxes is not None else [("VAT", "19", False)]
    sign = Decimal(-1) if kind == "credit_note" else Decimal(1)
    cur = currency or account.currency
    subtotal = money.quantize(sum((Decimal(a) for *_, a in lines), Decimal(0)) * sign, cur)
    with unscoped():
        inv = Invoice(tenant_id=account.tenant_id, account_id=account.id, kind=kind,
                      period_key=f"void:{credit_note_for_id}" if kind == "credit_note" else period[0].strftime("%Y-%m"),
                      period_start=period[0], period_end=period[1], status=status, number=number,
                      series=number.rstrip("0123456789") if number else None,
                      sequence=int(number[-6:]) if number else None, currency=cur, subtotal=subtotal,
                      issued_at=issued_at, due_date=due_date if kind == "invoice" else None,
                      customer={"name": account.name, "company": account.company, "email": account.email,
                                "address_lines": ["Kaiserkai 3", "20457 Hamburg"], "tax_number": "DE987654321",
                                "account_number": account.account_number},
                      seller=SELLER, timezone=account.timezone, credit_note_for_id=credit_note_for_id,
                      void_reason=void_reason, voided_at=voided_at, tax_exempt_reason=tax_exempt_reason,
                      amount_paid=Decimal(amount_paid))
        db.session.add(inv)
        db.session.flush()
        for pos, (lkind, desc, calls, qty, unit, amount) in enumerate(lines):
            db.session.add(InvoiceLine(tenant_id=account.tenant_id, invoice_id=inv.id, position=pos, kind=lkind,
                                       description=desc, calls=calls, quantity=Decimal(qty) if qty else None,
                                       unit_price=Decimal(unit) if unit else None, amount=Decimal(amount) * sign))
        base, tax_total = subtotal, Decimal(0)
        for pos, (name, rate, compound) in enumerate(taxes):
            on = base + tax_total if compound else base
            amount = money.quantize(on * Decimal(rate) / 100, cur)
            db.session.add(InvoiceTax(tenant_id=account.tenant_id, invoice_id=inv.id, position=pos, name=name,
                                      rate=Decimal(rate), compound=compound, base=on, amount=amount))
            tax_total += amount
        inv.tax_total, inv.total = tax_total, subtotal + tax_total
        db.session.commit()
        return inv


def statement(account, *, period=(date(2026, 11, 1), date(2026, 12, 1))) -> Statement:
    with unscoped():
        st = Statement(tenant_id=account.tenant_id, account_id=account.id, period_key=period[0].strftime("%Y-%m"),
                       period_start=period[0], period_end=period[1], currency=account.currency,
                       opening_balance=Decimal("12.50"), credits=Decimal("50.00"), charges=Decimal("-23.4567"),
                       closing_balance=Decimal("39.0433"), customer={"name": account.name,
                                                                     "account_number": account.account_number},
                       timezone=account.timezone, created_at=datetime(2026, 12, 1, 6, 0))
        db.session.add(st)
        db.session.flush()
        for pos, (kind, desc, country, calls, qty, amount) in enumerate([
                ("payment", "Top-up by card", None, None, None, "50.00"),
                ("recurring", "Service plan (monthly)", None, None, None, "-15.00"),
                ("calls", "Calls to Germany", "DE", 120, "310.5", "-8.4567")]):
            db.session.add(StatementLine(tenant_id=account.tenant_id, statement_id=st.id, position=pos, kind=kind,
                                         description=desc, country=country, calls=calls,
                                         quantity=Decimal(qty) if qty else None, amount=Decimal(amount)))
        db.session.commit()
        return st


def receipt(account, *, number="RCT-2026-000007", amount="59.50", net="50.00",
            taxes=(("VAT", "19", "9.50"),)) -> Receipt:
    with unscoped():
        r = Receipt(tenant_id=account.tenant_id, account_id=account.id, ledger_key=f"stripe:pay:pi_{number}",
                    number=number, series=number.rstrip("0123456789"), sequence=int(number[-6:]), kind="payment",
                    method="card", reference="pi_123", currency=account.currency, amount=Decimal(amount),
                    tax_total=Decimal(amount) - Decimal(net), net=Decimal(net),
                    taxes=[{"name": n, "rate": r_, "compound": False, "base": net, "amount": a} for n, r_, a in taxes],
                    customer={"name": account.name, "account_number": account.account_number},
                    seller=SELLER, issued_at=datetime(2026, 11, 20, 15, 30))
        db.session.add(r)
        db.session.commit()
        return r
