"""Postpaid invoices: build (draft) from a closed period's ledger entries, finalise (number,
tax ledger entry, due date), void through a credit note, and payments applied to them.

Money (docs/invoicing.md):
- Lines are the account's ledger entries whose created_at falls in the closed period
  [period_start, period_end) of the account's time zone: each user, number, recurring charge
  and adjustment (either sign) is a line; calls are grouped by country (calls, billed minutes,
  amount). Credits, payments, refunds, refills, taxes and invoice entries are never lines.
- A call line is rounded once to the currency's minor unit (calls are charged at the reseller's
  call charge precision, up to 4 places). On finalise, the sub-unit difference between the
  period's entries and the invoice subtotal is posted as ledger kind `invoice`, key
  `invoice:<id>:rounding`, and the taxes as kind `tax`, key `invoice:<id>:tax`: afterwards the
  period moved the balance by exactly minus the invoice total, so paying the total brings it
  back, and balance == sum(ledger) holds.
- Void: a credit note (own number, same series, negated lines and taxes) and one ledger credit
  of the whole invoice total, kind `invoice`, key `invoice:<id>:void`: the customer no longer
  owes what the invoice said. A charge that was right is billed again by an adjustment, which
  the next invoice carries with its taxes. The voided invoice keeps every field but status,
  voided_at and void_reason.

Every function flushes, never commits. The batch forms (`build_batch`, `finalise_batch`) serve
the run (app/invoicing/runs.py); `build_invoice`, `finalise_invoice` are the one-account forms.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import pycountry
from sqlalchemy import Integer, cast, delete, func, select

from app import audit, ledger, money
from app.accounts.models import Account
from app.billing.schedule import Period, local_date
from app.calls.models import Call
from app.conflicts import FieldError
from app.extensions import db
from app.invoicing import numbering, taxes as tax_rules
from app.invoicing.models import (Invoice, InvoiceLine, InvoicePayment, InvoiceSettings, InvoiceTax)
from app.ledger import LedgerEntry
from app.money import MONEY_SCALE
from app.timezones import zone
from tenants.models import Tenant, utcnow

LINE_ENTRY_KINDS = ("user_charge", "number_charge", "recurring", "adjustment")
CALL_KIND = "call"
ZERO = Decimal(0)
MINUTE_PLACES = Decimal("0.0001")
UNIT_PRICE_PLACES = Decimal("0.000001")


class InvoiceError(FieldError):
    """A refused invoice operation; the message is fit for the page."""

    def __init__(self, message: str):
        super().__init__(None, message)


# --- settings and snapshots ----------------------------------------------------------------------

def settings_of(tenant_id: int) -> dict:
    """The tenant's invoice settings as a dict; the defaults without a row."""
    row = db.session.execute(select(InvoiceSettings).where(InvoiceSettings.tenant_id == tenant_id)
                             .execution_options(all_tenants=True)).scalar_one_or_none()
    out = dict(InvoiceSettings.DEFAULTS)
    if row is not None:
        out.update({k: getattr(row, k) for k in InvoiceSettings.DEFAULTS})
    return out


def customer_snapshot(account: Account) -> dict:
    """What an invoice says about the customer, frozen when it is built (the documents read the
    same keys: name, company, email, address_lines, tax_number, account_number)."""
    place = " ".join(p for p in (account.postcode, account.city) if p)
    region = ", ".join(p for p in (place, account.state, account.country) if p)
    return {"name": account.name, "company": account.company, "email": account.email,
            "address_lines": [p for p in (account.address, region) if p], "tax_number": account.vat_number,
            "account_number": account.account_number}


def seller_snapshot(tenant_id: int, settings: dict) -> dict:
    name = settings.get("legal_name") or db.session.execute(
        select(Tenant.name).where(Tenant.id == tenant_id).execution_options(all_tenants=True)).scalar() or ""
    return {"legal_name": name, "address": settings.get("address") or "", "tax_number": settings.get("tax_number") or "",
            "email": settings.get("email") or ""}


def utc_bounds(period: Period, tz: str) -> tuple[datetime, datetime]:
    from app.billing.cycle import utc_start

    return utc_start(period.start, tz), utc_start(period.end, tz)


# --- what a period holds ---------------------------------------------------------------------------

@dataclass
class LineData:
    kind: str
    description: str
    amount: Decimal                      # as invoiced: a debit is positive
    country: str | None = None
    calls: int | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None


@dataclass
class Computed:
    account_id: int
    currency: str
    lines: list = field(default_factory=list)
    exact: Decimal = ZERO                # the period's line entries, as the ledger has them (debits negative)
    tax_lines: list = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return tax_rules.total_of(self.tax_lines)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_total

    @property
    def rounding(self) -> Decimal:
        """What the ledger still needs so the period moved the balance by −subtotal exactly."""
        return -self.subtotal - self.exact


_COUNTRY_NAMES = {c.alpha_2: c.name for c in pycountry.countries}


def _country_label(code: str | None) -> str:
    if not code:
        return "Calls"
    return f"Calls to {_COUNTRY_NAMES.get(code, code)}"


def collect(accounts, period: Period) -> dict[int, Computed]:
    """The lines (before taxes) of each account's closed `period`. `accounts`: Account rows (in
    scope). Two queries per distinct time zone of the batch."""
    out = {a.id: Computed(a.id, a.currency) for a in accounts}
    currency = {a.id: a.currency for a in accounts}
    by_zone: dict[str, list[int]] = defaultdict(list)
    for a in accounts:
        by_zone[a.timezone or "UTC"].append(a.id)
    for tz, ids in by_zone.items():
        start, end = utc_bounds(period, tz)
        entries = db.session.execute(
            select(LedgerEntry.account_id, LedgerEntry.id, LedgerEntry.kind, LedgerEntry.amount,
                   LedgerEntry.description)
            .where(LedgerEntry.account_id.in_(ids), LedgerEntry.kind.in_(LINE_ENTRY_KINDS),
                   LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .order_by(LedgerEntry.account_id, LedgerEntry.id)).all()
        for account_id, _, kind, amount, description in entries:
            c = out[account_id]
            c.exact += amount
            c.lines.append(LineData(kind, description or kind.replace("_", " "), -amount, quantity=None))
        call_id = cast(func.substr(LedgerEntry.idempotency_key, 6), Integer)
        groups = db.session.execute(
            select(LedgerEntry.account_id, Call.country, func.count(), func.coalesce(func.sum(Call.charged_seconds), 0),
                   func.sum(LedgerEntry.amount))
            .select_from(LedgerEntry).outerjoin(Call, Call.id == call_id)
            .where(LedgerEntry.account_id.in_(ids), LedgerEntry.kind == CALL_KIND,
                   LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
            .group_by(LedgerEntry.account_id, Call.country)
            .order_by(LedgerEntry.account_id, Call.country)).all()
        for account_id, country, count, seconds, amount in groups:
            c = out[account_id]
            amount = Decimal(amount)
            c.exact += amount
            rounded = money.quantize(-amount, currency[account_id])
            minutes = (Decimal(int(seconds)) / 60).quantize(MINUTE_PLACES)
            unit = (-amount / minutes).quantize(UNIT_PRICE_PLACES) if minutes else None
            c.lines.append(LineData("calls", _country_label(country), rounded, country=country or None,
                                    calls=int(count), quantity=minutes, unit_price=unit))
    for c in out.values():                # charges first (in entry order), then calls by country
        c.lines.sort(key=lambda line: line.kind == "calls")
    return out


def with_taxes(computed: dict[int, Computed]) -> dict[int, Computed]:
    specs = tax_rules.applicable_many(computed.keys())
    for account_id, c in computed.items():
        c.tax_lines = tax_rules.compute(c.subtotal, specs.get(account_id, []), c.currency)
    return computed


# --- build -------------------------------------------------------------------------------------------

def _existing(account_ids, kind: str, period_key: str) -> dict[int, Invoice]:
    return {i.account_id: i for i in db.session.execute(
        select(Invoice).where(Invoice.account_id.in_(list(account_ids)), Invoice.kind == kind,
                              Invoice.period_key == period_key)
        .execution_options(populate_existing=True)).scalars()}


def _write_lines(invoice: Invoice, c: Computed) -> None:
    session = db.session
    session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
    session.execute(delete(InvoiceTax).where(InvoiceTax.invoice_id == invoice.id))
    _insert_lines([(invoice, c)])


def _insert_lines(pairs) -> None:
    line_rows, tax_rows = [], []
    for invoice, c in pairs:
        for i, line in enumerate(c.lines, start=1):
            line_rows.append({"tenant_id": invoice.tenant_id, "invoice_id": invoice.id, "position": i,
                              "kind": line.kind, "description": line.description[:255], "country": line.country,
                              "calls": line.calls, "quantity": line.quantity, "unit_price": line.unit_price,
                              "amount": line.amount})
        for t in c.tax_lines:
            tax_rows.append({"tenant_id": invoice.tenant_id, "invoice_id": invoice.id, "position": t.position,
                             "tax_id": t.tax_id, "name": t.name, "rate": t.rate, "compound": t.compound,
                             "base": t.base, "amount": t.amount})
    insert_rows(InvoiceLine.__table__, line_rows, LINE_COPY)
    insert_rows(InvoiceTax.__table__, tax_rows, TAX_COPY)


LINE_COPY = (("tenant_id", "int4"), ("invoice_id", "int4"), ("position", "int4"), ("kind", "varchar"),
             ("description", "varchar"), ("country", "varchar"), ("calls", "int4"), ("quantity", "numeric"),
             ("unit_price", "numeric"), ("amount", "numeric"))
TAX_COPY = (("tenant_id", "int4"), ("invoice_id", "int4"), ("position", "int4"), ("tax_id", "int4"),
            ("name", "varchar"), ("rate", "numeric"), ("compound", "bool"), ("base", "numeric"), ("amount", "numeric"))


def insert_rows(table, rows: list[dict], columns) -> None:
    """Document lines (rows carrying their tenant) into `table`: by binary COPY on PostgreSQL
    (a run writes a dozen lines per invoice; a multi-row INSERT of thousands of parameters costs
    more to build than to run), a Core executemany elsewhere."""
    if not rows:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        from app.bulk import copy_rows

        names = [name for name, _ in columns]
        copy_rows(db.session, table.name, columns, [tuple(r[n] for n in names) for r in rows])
    else:
        db.session.execute(table.insert(), rows)


@dataclass
class Built:
    invoices: dict = field(default_factory=dict)     # account id -> Invoice (draft, or issued before)
    skipped: set = field(default_factory=set)        # account ids: zero total, skipped by the setting
    computed: dict = field(default_factory=dict)     # account id -> Computed (drafts only)


def build_batch(accounts, period: Period, *, skip_zero: bool | None = None) -> Built:
    """Drafts of `period` (closed) for these postpaid accounts: an issued invoice of the period
    is left as it is; a draft is rebuilt; a zero total is skipped (no row) when the tenant's
    setting (or `skip_zero`) says so. Flushes."""
    result = Built()
    accounts = list(accounts)
    if not accounts:
        return result
    existing = _existing([a.id for a in accounts], "invoice", period.key)
    todo = []
    for a in accounts:
        inv = existing.get(a.id)
        if inv is not None and inv.status != "draft":
            result.invoices[a.id] = inv
        else:
            todo.append(a)
    if not todo:
        return result
    computed = with_taxes(collect(todo, period))
    skip_by_tenant: dict[int, bool] = {}
    now = utcnow()
    new_pairs = []
    for a in todo:
        c = computed[a.id]
        skip = skip_zero
        if skip is None:
            if a.tenant_id not in skip_by_tenant:
                skip_by_tenant[a.tenant_id] = bool(settings_of(a.tenant_id)["skip_zero"])
            skip = skip_by_tenant[a.tenant_id]
        inv = existing.get(a.id)
        if skip and c.total == 0:
            if inv is not None:            # a draft that became zero: drafts are not issued, so it goes
                db.session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == inv.id))
                db.session.execute(delete(InvoiceTax).where(InvoiceTax.invoice_id == inv.id))
                db.session.delete(inv)
            result.skipped.add(a.id)
            continue
        values = dict(currency=a.currency, period_start=period.start, period_end=period.end,
                      subtotal=c.subtotal, tax_total=c.tax_total, total=c.total,
                      customer=customer_snapshot(a), tax_exempt_reason=a.tax_exempt_reason if a.tax_exempt else "",
                      timezone=a.timezone or "UTC", updated_at=now)
        if inv is None:
            inv = Invoice(tenant_id=a.tenant_id, account_id=a.id, kind="invoice", period_key=period.key,
                          status="draft", amount_paid=ZERO, created_at=now, **values)
            db.session.add(inv)
            new_pairs.append((inv, c))
        else:
            for k, v in values.items():
                setattr(inv, k, v)
            db.session.flush()
            _write_lines(inv, c)
        result.invoices[a.id] = inv
        result.computed[a.id] = c
    if new_pairs:
        db.session.flush()
        _insert_lines(new_pairs)
    return result


def build_invoice(account_id: int, period: Period, *, skip_zero: bool | None = None) -> Invoice | None:
    """The draft (or the issued invoice) of one account's closed period; None if skipped."""
    account = _account(account_id)
    if account.billing_type != "postpaid":
        raise InvoiceError("Only postpaid accounts get invoices; prepaid accounts get receipts and statements.")
    if local_date(account.timezone) < period.end:
        raise InvoiceError(f"The period {period.key} has not ended yet in the account's time zone.")
    return build_batch([account], period, skip_zero=skip_zero).invoices.get(account_id)


def _account(account_id: int) -> Account:
    account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one_or_none()
    if account is None:
        raise LookupError(f"account {account_id} not found in this scope")
    return account


# --- finalise ----------------------------------------------------------------------------------------

def _issue_dates(tz: str, now: datetime) -> date:
    aware = now.replace(tzinfo=zone("UTC")) if now.tzinfo is None else now
    return aware.astimezone(zone(tz)).date()


def finalise_batch(invoices, *, computed: dict | None = None, now: datetime | None = None) -> list[Invoice]:
    """Issue these drafts: numbers from their tenant's series (one UPDATE … RETURNING per series
    for the whole batch, in this transaction), due dates from the payment terms, the seller
    snapshot, and the ledger entries (`invoice:<id>:tax`, `invoice:<id>:rounding`). Drafts
    only; others are returned untouched. Flushes; the caller commits (which frees the series)."""
    now = now or utcnow()
    drafts = [i for i in invoices if i.status == "draft"]
    if not drafts:
        return list(invoices)
    session = db.session
    ids = [i.id for i in drafts]
    # Lock order everywhere: accounts, then the number series (the run has its accounts locked
    # already; a void or a receipt posts to its account before it takes a number). Never the
    # other way round, so two finalisers cannot wait on each other.
    _lock_accounts({i.account_id for i in drafts})
    # Lock the drafts (a second finaliser of the same invoice waits, then sees it issued).
    locked = {i.id: i for i in session.execute(select(Invoice).where(Invoice.id.in_(ids))
                                               .order_by(Invoice.id).with_for_update()
                                               .execution_options(populate_existing=True)).scalars()}
    drafts = [locked[i] for i in sorted(locked) if locked[i].status == "draft"]
    if not drafts:
        return list(invoices)
    computed = computed or {}
    settings_by_tenant: dict[int, dict] = {}
    by_series: dict[tuple[int, str], list[Invoice]] = defaultdict(list)
    issue_day = {}
    for inv in drafts:
        s = settings_by_tenant.get(inv.tenant_id)
        if s is None:
            s = settings_by_tenant[inv.tenant_id] = settings_of(inv.tenant_id)
        day = issue_day[inv.id] = _issue_dates(inv.timezone, now)
        by_series[(inv.tenant_id, numbering.series_of(s["number_prefix"], day.year))].append(inv)
    entries = []
    rounding_of = _rounding_of([i for i in drafts if i.account_id not in computed or
                                computed[i.account_id] is None], computed)
    for (tenant_id, series), group in sorted(by_series.items()):
        s = settings_by_tenant[tenant_id]
        last = numbering.allocate(tenant_id, series, len(group))
        first = last - len(group) + 1
        seller = seller_snapshot(tenant_id, s)
        for n, inv in zip(range(first, last + 1), group):
            inv.series, inv.sequence = series, n
            inv.number = numbering.format_number(series, n, s["number_digits"])
            inv.issued_at = now
            inv.due_date = issue_day[inv.id] + timedelta(days=int(s["payment_terms_days"]))
            inv.seller = seller
            inv.updated_at = now
            if inv.total <= 0:             # nothing to pay: a zero invoice, or credits beyond the charges
                inv.status, inv.paid_at = "paid", now
            else:
                inv.status = "open"
            if inv.tax_total:
                entries.append(ledger.Entry(inv.account_id, -inv.tax_total, "tax", f"invoice:{inv.id}:tax",
                                            f"Taxes of invoice {inv.number}"))
            c = computed.get(inv.account_id)
            rounding = c.rounding if c is not None else rounding_of.get(inv.id, ZERO)
            if rounding:
                entries.append(ledger.Entry(inv.account_id, rounding, "invoice", f"invoice:{inv.id}:rounding",
                                            f"Rounding of invoice {inv.number} to whole {inv.currency} units",
                                            MONEY_SCALE))
    session.flush()
    if entries:
        ledger.post_many(entries)
    for inv in drafts:
        audit.record("invoice.issued", inv, number=inv.number, total=str(inv.total), period=inv.period_key)
    _notify_issued(drafts)
    return [locked.get(i.id, i) for i in invoices]


def _lock_accounts(account_ids) -> None:
    if account_ids:
        db.session.execute(select(Account.id).where(Account.id.in_(sorted(account_ids))).order_by(Account.id)
                           .with_for_update(key_share=True)).all()


def _rounding_of(drafts, computed) -> dict[int, Decimal]:
    """For drafts built in another transaction: the period's entries again (they cannot have
    changed: the period is closed), less the subtotal."""
    out = {}
    for inv in drafts:
        account = _account(inv.account_id)
        period = Period(inv.period_start, inv.period_end, inv.period_key)
        c = collect([account], period)[account.id]
        if c.subtotal != inv.subtotal:
            raise InvoiceError(f"The period {inv.period_key} of account {account.account_number} changed since "
                               "its draft was built; build it again.")
        out[inv.id] = c.rounding
    return out


def _notify_issued(invoices) -> None:
    """Every invoice and credit note issued passes here (in its issuing transaction, flushed):
    the "invoice issued" email with its PDF is queued from here by the documents side
    (app/invoicing/render.py, issue 17 points 5-6), with app.jobs.enqueue so it leaves after
    the commit. Nothing else is done here."""
    from app.invoicing.mail import announce

    announce(invoices)


def finalise_invoice(invoice_id: int) -> Invoice:
    inv = _invoice(invoice_id)
    if inv.status != "draft":
        raise InvoiceError(f"Invoice {inv.number or inv.id} is already issued.")
    return finalise_batch([inv])[0]


def _invoice(invoice_id: int, *, lock: bool = False) -> Invoice:
    q = select(Invoice).where(Invoice.id == invoice_id).execution_options(populate_existing=True)
    if lock:
        q = q.with_for_update()
    inv = db.session.execute(q).scalar_one_or_none()
    if inv is None:
        raise LookupError(f"invoice {invoice_id} not found in this scope")
    return inv


# --- void ----------------------------------------------------------------------------------------------

def void_invoice(invoice_id: int, reason: str, *, created_by_id: int | None = None) -> Invoice:
    """Void an issued invoice through a credit note: returns the credit note. The invoice's
    total goes back to the balance (`invoice:<id>:void`); payments made on it stay as credit."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise FieldError("reason", "Say why the invoice is voided (printed on the credit note).")
    if len(reason) > 255:
        raise FieldError("reason", "At most 255 characters.")
    inv = _invoice(invoice_id)
    _lock_accounts({inv.account_id})          # accounts before the series, as finalise_batch
    inv = _invoice(invoice_id, lock=True)
    if inv.kind != "invoice":
        raise InvoiceError("A credit note cannot be voided.")
    if inv.status == "draft":
        raise InvoiceError("A draft is not issued: there is nothing to void.")
    if inv.status == "void":
        raise InvoiceError(f"Invoice {inv.number} is already void.")
    now = utcnow()
    note = Invoice(tenant_id=inv.tenant_id, account_id=inv.account_id, kind="credit_note",
                   period_key=f"void:{inv.id}", period_start=inv.period_start, period_end=inv.period_end,
                   status="paid", currency=inv.currency, subtotal=-inv.subtotal, tax_total=-inv.tax_total,
                   total=-inv.total, amount_paid=ZERO, credit_note_for_id=inv.id, customer=inv.customer,
                   tax_exempt_reason=inv.tax_exempt_reason, timezone=inv.timezone, void_reason=reason,
                   created_at=now, updated_at=now)
    db.session.add(note)
    db.session.flush()
    lines = db.session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id)
                               .order_by(InvoiceLine.position)).scalars().all()
    tax_rows = db.session.execute(select(InvoiceTax).where(InvoiceTax.invoice_id == inv.id)
                                  .order_by(InvoiceTax.position)).scalars().all()
    for line in lines:
        db.session.add(InvoiceLine(tenant_id=inv.tenant_id, invoice_id=note.id, position=line.position, kind=line.kind,
                                   description=line.description, country=line.country, calls=line.calls,
                                   quantity=line.quantity, unit_price=line.unit_price, amount=-line.amount))
    for t in tax_rows:
        db.session.add(InvoiceTax(tenant_id=inv.tenant_id, invoice_id=note.id, position=t.position, tax_id=t.tax_id,
                                  name=t.name, rate=t.rate, compound=t.compound, base=-t.base, amount=-t.amount))
    s = settings_of(inv.tenant_id)
    day = _issue_dates(inv.timezone, now)
    series = numbering.series_of(s["number_prefix"], day.year)
    n = numbering.allocate(inv.tenant_id, series)
    note.series, note.sequence, note.number = series, n, numbering.format_number(series, n, s["number_digits"])
    note.issued_at, note.paid_at, note.due_date = now, now, day
    note.seller = seller_snapshot(inv.tenant_id, s)
    inv.status, inv.voided_at, inv.void_reason = "void", now, reason
    db.session.flush()
    if inv.total:
        ledger.post(inv.account_id, inv.total, "invoice", f"invoice:{inv.id}:void",
                    description=f"Credit note {note.number} voids invoice {inv.number}", created_by_id=created_by_id)
    audit.record("invoice.voided", inv, number=inv.number, credit_note=note.number, reason=reason)
    _notify_issued([note])
    return note


# --- payments ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    invoice_id: int
    applied: Decimal           # what went to the invoice this time
    left_on_balance: Decimal   # the rest of the payment: it stays on the balance as credit
    status: str
    created: bool              # False: this key was applied before; nothing changed


def apply_invoice_payment(invoice_id: int, amount, *, key: str, payment_id: int | None = None,
                          ledger_entry_id: int | None = None, paid_at: datetime | None = None,
                          account_id: int | None = None) -> Applied:
    """Apply a payment that was credited to the balance (by its own ledger entry: the caller's)
    to an invoice. Once per `key` (the payment's ledger key): applying again changes nothing.
    A part payment raises amount_paid and leaves the invoice open; paying the rest marks it
    paid; what is beyond the amount due stays on the balance as credit (it was credited in
    full). A void or draft invoice (or, with `account_id`, another account's) takes nothing: all
    of it stays as credit. Flushes."""
    if not key:
        raise ValueError("an invoice payment needs the key of its ledger credit")
    inv = _invoice(invoice_id, lock=True)
    received = money.quantize(amount, inv.currency)
    if received <= 0:
        raise FieldError("amount", "The amount must be more than zero.")
    done = db.session.execute(select(InvoicePayment).where(InvoicePayment.invoice_id == inv.id,
                                                           InvoicePayment.key == key[:160])).scalar_one_or_none()
    if done is not None:
        return Applied(inv.id, done.amount, done.received - done.amount, inv.status, False)
    if inv.kind != "invoice" or inv.status not in ("open", "paid") or (account_id is not None
                                                                        and inv.account_id != account_id):
        return Applied(inv.id, ZERO, received, inv.status, False)      # not this account's bill: credit only
    applied = min(received, inv.amount_due)
    db.session.add(InvoicePayment(tenant_id=inv.tenant_id, account_id=inv.account_id, invoice_id=inv.id,
                                  key=key[:160], amount=applied, received=received, payment_id=payment_id,
                                  ledger_entry_id=ledger_entry_id, created_at=utcnow()))
    inv.amount_paid = inv.amount_paid + applied
    if inv.status == "open" and inv.amount_paid >= inv.total:
        inv.status, inv.paid_at = "paid", paid_at or utcnow()
    inv.updated_at = utcnow()
    db.session.flush()
    audit.record("invoice.payment_applied", inv, number=inv.number, applied=str(applied), received=str(received),
                 status=inv.status)
    return Applied(inv.id, applied, received - applied, inv.status, True)


def record_invoice_payment(invoice_id: int, amount, *, method: str, reference: str, paid_at: datetime,
                           created_by_id: int | None = None):
    """A payment typed in by the reseller against an invoice: the manual payment (ledger credit,
    receipt path of app/payments) then applied to the invoice. Returns (Payment, Applied)."""
    from app.payments.operations import record_manual_payment

    inv = _invoice(invoice_id)
    if inv.kind != "invoice" or inv.status not in ("open", "paid"):
        raise InvoiceError("Only an issued invoice that is not void takes payments.")
    payment = record_manual_payment(inv.account_id, amount, method=method, reference=reference, paid_at=paid_at,
                                    invoice_id=inv.id, created_by_id=created_by_id)
    applied = db.session.execute(select(InvoicePayment).where(InvoicePayment.invoice_id == inv.id,
                                                              InvoicePayment.payment_id == payment.id)).scalar_one_or_none()
    return payment, applied


def payments_of(invoice_id: int) -> list[InvoicePayment]:
    return list(db.session.execute(select(InvoicePayment).where(InvoicePayment.invoice_id == invoice_id)
                                   .order_by(InvoicePayment.id)).scalars())


def lines_of(invoice_id: int) -> list[InvoiceLine]:
    return list(db.session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                                   .order_by(InvoiceLine.position)).scalars())


def taxes_of(invoice_id: int) -> list[InvoiceTax]:
    return list(db.session.execute(select(InvoiceTax).where(InvoiceTax.invoice_id == invoice_id)
                                   .order_by(InvoiceTax.position)).scalars())


def outstanding(account_id: int) -> list[Invoice]:
    """Open invoices of an account, oldest first (what a payment without an invoice may go to)."""
    return list(db.session.execute(select(Invoice).where(Invoice.account_id == account_id, Invoice.kind == "invoice",
                                                         Invoice.status == "open")
                                   .order_by(Invoice.issued_at, Invoice.id)).scalars())

