"""Prepaid credits: the taxes of a top-up, their reversal on a refund, and a receipt for every
credit (docs/invoicing.md "Prepaid").

A prepaid account pays its taxes when money comes in, tax included (as a prepaid voucher): a
payment of G posts `payment +G` (the payment path's own entry) and, here, `tax −T` keyed
`tax:<payment key>`, T being the taxes' share of G (G = net + taxes of net,
app/invoicing/taxes.split_inclusive). Charges and calls then carry no tax, so no tax is
paid twice, and balance == sum(ledger). A refund of R of that payment gives back the same share
of the tax: the cumulative tax reversed after refunding C in total is T × C / G (rounded), so
partial refunds add up to exactly T when everything is refunded; key `tax:<refund key>`.
A reseller's manual credit carries no tax (it is not a sale); it gets a receipt too.
An exempt account (or one without taxes) pays none.

Postpaid accounts pay their taxes on their invoices; their payments go to invoices
(`apply_to_invoices`), not to receipts.
"""
from decimal import Decimal

from sqlalchemy import select

from app import ledger, money
from app.accounts.models import Account
from app.extensions import db
from app.invoicing import numbering, taxes as tax_rules
from app.invoicing.invoices import (ZERO, apply_invoice_payment, customer_snapshot, outstanding, seller_snapshot,
                                    settings_of)
from app.invoicing.models import Receipt
from app.ledger import LedgerEntry
from tenants.models import utcnow

RECEIPT_KINDS = ("payment", "credit")


def tax_key(credit_key: str) -> str:
    return f"tax:{credit_key}"[:160]


def on_credit(account: Account, posted, credit_key: str, *, kind: str, gross, payment_id: int | None = None,
              invoice_id: int | None = None, method: str = "", reference: str = "",
              created_by_id: int | None = None):
    """Called by every path that credits money in (a Stripe or manual payment, a reseller's
    credit) after its ledger entry was newly posted (`posted.created`). Prepaid: the top-up's
    taxes (payments only) and the receipt. Postpaid: the payment goes to the invoice it names,
    or to the open invoices oldest first. Returns the Receipt (prepaid) or the Applied list."""
    if not posted.created:
        return None
    if account.billing_type == "postpaid":
        if kind != "payment":
            return []
        return apply_to_invoices(account.id, gross, key=credit_key, invoice_id=invoice_id, payment_id=payment_id,
                                 ledger_entry_id=posted.entry_id)
    gross = money.quantize(gross, account.currency)
    net, lines = gross, []
    if kind == "payment":
        net, lines = pay_taxes(account.id, account.currency, gross, credit_key, reference=reference,
                               created_by_id=created_by_id)
    return issue_receipt(account, credit_key, kind=kind, amount=gross, net=net, tax_lines=lines,
                         ledger_entry_id=posted.entry_id, payment_id=payment_id, method=method, reference=reference,
                         fresh=True)


def pay_taxes(account_id: int, currency: str, gross, credit_key: str, *, reference: str = "",
              exempt: bool | None = None, created_by_id: int | None = None, facts=None):
    """A prepaid payment's taxes, tax included: posts `tax −T` keyed `tax:<credit key>` (once).
    Returns (net, tax lines). `exempt` and `facts` (ledger.AccountFacts): what the caller read
    of the account already."""
    gross = money.quantize(gross, currency)
    net, lines = tax_rules.split_inclusive(gross, tax_rules.applicable(account_id, exempt), currency)
    total = tax_rules.total_of(lines)
    if total:
        names = ", ".join(f"{t.name}" for t in lines)
        ledger.post(account_id, -total, "tax", tax_key(credit_key), description=f"{names} on payment {reference}"[:255],
                    created_by_id=created_by_id, facts=facts)
    return net, lines


def issue_receipt(account: Account, credit_key: str, *, kind: str, amount, net, tax_lines, ledger_entry_id=None,
                  payment_id=None, method: str = "", reference: str = "", fresh: bool = False) -> Receipt:
    """Number and store the receipt of one credit (once per credit key). `fresh`: the credit
    was posted in this transaction, so no receipt can exist for it yet."""
    if not fresh:
        done = receipt_for(account.id, credit_key)
        if done is not None:
            return done
    s = settings_of(account.tenant_id)
    now = utcnow()
    from app.invoicing.invoices import _issue_dates

    series = numbering.series_of(s["receipt_prefix"], _issue_dates(account.timezone or "UTC", now).year)
    n = numbering.allocate(account.tenant_id, series)
    receipt = Receipt(tenant_id=account.tenant_id, account_id=account.id, ledger_key=credit_key[:160],
                      ledger_entry_id=ledger_entry_id, payment_id=payment_id, series=series, sequence=n,
                      number=numbering.format_number(series, n, s["number_digits"]), kind=kind, method=method or "",
                      reference=(reference or "")[:120], currency=account.currency, amount=amount,
                      tax_total=tax_rules.total_of(tax_lines), net=net, taxes=[t.as_dict() for t in tax_lines],
                      customer=customer_snapshot(account), seller=seller_snapshot(account.tenant_id, s), issued_at=now)
    db.session.add(receipt)
    db.session.flush()
    return receipt


def on_refund(account_id: int, payment_key: str, refund_key: str, *, gross, refunded_before, refunded_now):
    """A refund of a prepaid payment: give back the same share of the tax the payment paid.
    `refunded_before` / `refunded_now`: the cumulative refunded amounts before and after this
    refund. Returns the posted reversal (or None when the payment paid no tax)."""
    paid = db.session.execute(select(LedgerEntry.amount).where(LedgerEntry.account_id == account_id,
                                                               LedgerEntry.idempotency_key == tax_key(payment_key))
                              ).scalar_one_or_none()
    if not paid:
        return None
    currency = db.session.execute(select(Account.currency).where(Account.id == account_id)).scalar_one()
    tax = -Decimal(paid)
    gross = money.to_decimal(gross)
    if gross <= 0:
        return None

    def share(refunded) -> Decimal:
        refunded = min(money.to_decimal(refunded), gross)
        return money.quantize(tax * refunded / gross, currency)

    back = share(refunded_now) - share(refunded_before)
    if back <= 0:
        return None
    return ledger.post(account_id, back, "tax", tax_key(refund_key), description="Tax returned with a refund")


def apply_to_invoices(account_id: int, amount, *, key: str, invoice_id: int | None = None,
                      payment_id: int | None = None, ledger_entry_id: int | None = None) -> list:
    """A postpaid payment: to the invoice it names; without one, to the open invoices oldest
    first. Whatever is left stays on the balance as credit (it was credited in full)."""
    left = money.to_decimal(amount)
    applied = []
    targets = [invoice_id] if invoice_id else [i.id for i in outstanding(account_id)]
    for target in targets:
        if left <= ZERO:
            break
        try:
            result = apply_invoice_payment(target, left, key=key, payment_id=payment_id,
                                           ledger_entry_id=ledger_entry_id, account_id=account_id)
        except LookupError:
            continue                      # an invoice id from elsewhere (another tenant's): credit only
        applied.append(result)
        left -= result.applied
    return applied


def receipts_of(account_id: int, limit: int = 100) -> list[Receipt]:
    return list(db.session.execute(select(Receipt).where(Receipt.account_id == account_id)
                                   .order_by(Receipt.id.desc()).limit(limit)).scalars())


def receipt_for(account_id: int, credit_key: str) -> Receipt | None:
    return db.session.execute(select(Receipt).where(Receipt.account_id == account_id,
                                                    Receipt.ledger_key == credit_key[:160])).scalar_one_or_none()
