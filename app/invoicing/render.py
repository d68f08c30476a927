"""Invoices, credit notes, statements and receipts as HTML and PDF.

One Jinja template per document (app/templates/documents/: invoice.html, credit_note.html,
statement.html, receipt.html, sharing _base.html, _blocks.html and the print stylesheet
_document.css). The same HTML is a page in the portals and, through WeasyPrint, the PDF.

What a document says comes from its own snapshots (an issued invoice's customer and seller,
lines, taxes): re-rendering it next year gives the same document. Only presentation options
are read from the reseller's invoice settings when it is rendered: the logo, decimals shown,
the rate table, the payment summary and the footer (seed 002). Amounts are formatted for the
account's currency and locale (its language and country, Babel: `money.format_money_shown`);
dates are the account's (the document's time zone snapshot).

Decisions where the seed is silent:
- "Decimals shown" applies to every amount; a per-minute rate shows at least 4 decimals
  (a rate of 0.0125 would read 0.01 otherwise).
- The rate table ("include the rate table") lists the rates of the account's price list that
  priced the calls of the period (prefix, destination, rate per minute, connect fee) with their
  calls, billed minutes and amount: the detail under the call lines, which are by country.
- The payment summary lists the credits of the period (payments, credits, refills, positive
  adjustments, from the ledger) and the payments applied to this invoice.

WeasyPrint fetches nothing: the logo is inlined as a data: URI and the URL fetcher allows
only data: URIs, so no document can make the server request a URL.
"""
from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_decimal
from flask import current_app
from sqlalchemy import select

from app import money
from app.accounts.models import Account
from app.invoicing import options
from app.invoicing.models import (Invoice, InvoiceLine, InvoicePayment, InvoiceTax, Receipt, Statement,
                                  StatementLine)
from app.ledger import LedgerEntry
from app.timezones import local_midnight_utc, to_local, today_in

# WeasyPrint logs every layout step at INFO: noise in a worker's log for each invoice.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

TEMPLATES = {"invoice": "documents/invoice.html", "credit_note": "documents/credit_note.html",
             "statement": "documents/statement.html", "receipt": "documents/receipt.html"}
TITLES = {"invoice": "Invoice", "credit_note": "Credit note", "statement": "Statement", "receipt": "Receipt"}
RATE_DECIMALS_MIN = 4
# Ledger kinds that are money in (the payment summary); tax reversals are not payments.
CREDIT_KINDS = ("payment", "credit", "refill", "adjustment")
LINE_KIND_GROUPS = {"calls": "Calls", "user_charge": "Users", "number_charge": "Numbers", "recurring": "Recurring charges",
                    "adjustment": "Adjustments"}


class DocumentNotFound(LookupError):
    pass


# --- formatting -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Formats:
    """How a document writes amounts, rates, quantities and dates for one account."""
    currency: str
    locale: str
    decimals: int | None = None      # None: the currency's minor unit
    tz: str = "UTC"

    def money(self, amount) -> str:
        return money.format_money_shown(Decimal(amount), self.currency, self.locale, self.decimals)

    def rate(self, amount) -> str:
        places = max(self.decimals if self.decimals is not None else money.minor_units(self.currency),
                     RATE_DECIMALS_MIN)
        return money.format_money_shown(Decimal(amount), self.currency, self.locale, places)

    def minutes(self, quantity) -> str:
        return format_decimal(Decimal(quantity), format="#,##0.0", locale=self.locale)

    def number(self, value) -> str:
        return format_decimal(Decimal(value), locale=self.locale)

    def date(self, day: date | datetime | None) -> str:
        if day is None:
            return ""
        if isinstance(day, datetime):
            day = to_local(day, self.tz).date()
        return format_date(day, format="medium", locale=self.locale)

    def period(self, start: date, end_exclusive: date) -> str:
        return f"{self.date(start)} – {self.date(end_exclusive - timedelta(days=1))}"


def formats_for(account: Account, settings: dict, currency: str, tz: str | None = None) -> Formats:
    return Formats(currency=currency.upper(), locale=money.locale_for(account.language, account.country),
                   decimals=settings.get("decimals_shown"), tz=tz or account.timezone or "UTC")


# --- settings, seller, customer ---------------------------------------------------------------

def settings_for(tenant_id: int) -> dict:
    """The reseller's invoice options as a dict (defaults without a row), logo bytes included."""
    out = options.current(tenant_id)
    logo = options.logo_of(tenant_id)
    out["logo"], out["logo_type"] = logo if logo else (None, "")
    return out


def logo_data_uri(settings: dict) -> str | None:
    if not settings.get("logo") or not settings.get("logo_type"):
        return None
    return f"data:{settings['logo_type']};base64,{base64.b64encode(settings['logo']).decode('ascii')}"


def _lines_of(text) -> list[str]:
    if not text:
        return []
    if isinstance(text, (list, tuple)):
        return [str(x).strip() for x in text if str(x).strip()]
    return [part.strip() for part in str(text).splitlines() if part.strip()]


def seller_of(snapshot: dict | None, settings: dict, tenant_name: str = "") -> dict:
    s = dict(snapshot or {})
    if not any(s.get(k) for k in ("legal_name", "address", "tax_number", "email")):
        s = {k: settings.get(k, "") for k in ("legal_name", "address", "tax_number", "email")}
    return {"legal_name": s.get("legal_name") or tenant_name, "address_lines": _lines_of(s.get("address")),
            "tax_number": s.get("tax_number") or "", "email": s.get("email") or ""}


def customer_of(snapshot: dict | None, account: Account) -> dict:
    s = dict(snapshot or {})
    if not s:
        s = account_snapshot(account)
    lines = _lines_of(s.get("address_lines") or s.get("address"))
    return {"name": s.get("name") or "", "company": s.get("company") or "", "address_lines": lines,
            "email": s.get("email") or "", "tax_number": s.get("tax_number") or s.get("vat_number") or "",
            "account_number": s.get("account_number") or account.account_number}


def account_snapshot(account: Account) -> dict:
    """What a document says about the customer when it has no snapshot of its own."""
    place = " ".join(p for p in (account.postcode, account.city) if p)
    region = ", ".join(p for p in (place, account.state, account.country) if p)
    return {"name": account.name, "company": account.company, "email": account.email,
            "address_lines": [p for p in (account.address, region) if p], "tax_number": account.vat_number,
            "account_number": account.account_number}


# --- the documents ----------------------------------------------------------------------------

@dataclass
class Document:
    kind: str
    title: str
    number: str
    lang: str
    seller: dict
    customer: dict
    logo: str | None
    footer: str
    facts: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    notes_warn: bool = False
    stamp: dict | None = None
    lines: list = field(default_factory=list)
    totals: list = field(default_factory=list)
    pay_info: list = field(default_factory=list)
    payment_summary: list | None = None
    balance_note: str = ""
    rate_table: list | None = None
    summary: dict | None = None
    amount: str = ""
    received_label: str = ""
    received_detail: str = ""
    labels: dict = field(default_factory=lambda: {"customer": "Bill to", "seller_tax": "Tax number"})


def _db():
    from app.extensions import db

    return db


def _one(model, id_):
    """The row in the caller's tenant scope (another tenant's: DocumentNotFound)."""
    row = _db().session.execute(select(model).where(model.id == id_)).scalar_one_or_none()
    if row is None:
        raise DocumentNotFound(f"{model.__tablename__} {id_} not found in this scope")
    return row


def _account(account_id: int) -> Account:
    return _db().session.execute(select(Account).where(Account.id == account_id)
                                 .execution_options(all_tenants=True)).scalar_one()


def _tenant_name(tenant_id: int) -> str:
    from tenants.models import Tenant

    return _db().session.execute(select(Tenant.name).where(Tenant.id == tenant_id)
                                 .execution_options(all_tenants=True)).scalar_one_or_none() or ""


def _line_rows(lines, f: Formats, with_detail: bool) -> list[dict]:
    rows = []
    for line in lines:
        is_calls = line.kind == "calls"
        detail = ""
        if is_calls and line.calls is not None:
            detail = f"{f.number(line.calls)} calls"
        quantity = ""
        if line.quantity is not None:
            quantity = f"{f.minutes(line.quantity)} min" if is_calls else f.number(line.quantity)
        unit = ""
        unit_price = getattr(line, "unit_price", None)
        if unit_price is None and is_calls and line.quantity:
            unit_price = Decimal(line.amount).copy_abs() / Decimal(line.quantity)   # a statement's: the average
        if unit_price is not None and with_detail:
            unit = (f.rate(unit_price) + "/min") if is_calls else f.money(unit_price)
        rows.append({"description": line.description, "detail": detail, "quantity": quantity,
                     "unit_price": unit, "amount": f.money(line.amount)})
    return rows


def _rate_table(account_id: int, start: datetime, end: datetime, f: Formats) -> list[dict]:
    """The rates that priced the calls debited in [start, end) (UTC): each call's ledger entry
    `call:<call id>` of the period, its call, the rate it was rated with; by rate."""
    from sqlalchemy import String, cast, func, literal

    from app.calls.models import Call
    from app.rating.models import Rate

    db = _db()
    q = (select(Rate.prefix, Rate.description, Rate.country, Rate.rate_per_minute, Rate.connect_fee,
                func.count(Call.id), func.coalesce(func.sum(Call.charged_seconds), 0),
                func.coalesce(func.sum(-LedgerEntry.amount), 0))
         .select_from(LedgerEntry)
         .join(Call, LedgerEntry.idempotency_key == literal("call:") + cast(Call.id, String))
         .join(Rate, Rate.id == Call.rate_id)
         .where(LedgerEntry.account_id == account_id, LedgerEntry.kind == "call",
                LedgerEntry.created_at >= start, LedgerEntry.created_at < end, Call.account_id == account_id)
         .group_by(Rate.id, Rate.prefix, Rate.description, Rate.country, Rate.rate_per_minute, Rate.connect_fee)
         .order_by(Rate.prefix))
    rows = []
    for prefix, description, country, per_minute, connect_fee, calls, seconds, amount in db.session.execute(q):
        rows.append({"prefix": prefix, "destination": description or _country_name(country, f.locale),
                     "rate": f.rate(per_minute), "connect_fee": f.rate(connect_fee) if connect_fee else "",
                     "calls": f.number(calls), "minutes": f.minutes(Decimal(seconds) / 60),
                     "amount": f.money(amount)})
    return rows


def _country_name(code: str | None, locale: str) -> str:
    from babel import Locale

    if not code:
        return ""
    return Locale.parse(locale).territories.get(code.upper(), code.upper())


def _tax_label(t, f: Formats) -> str:
    """"VAT (20 %)"; a name that already says its rate ("VAT 20%", as the migration named the
    old VAT rates) is not repeated: "VAT 20%"."""
    plain = format(Decimal(t.rate).normalize(), "f")
    rate = format_decimal(Decimal(t.rate).normalize(), locale=f.locale)
    compound = ", compound" if t.compound else ""
    if re.search(rf"(?<![\d.,]){re.escape(plain)}\s?%", t.name) or re.search(rf"(?<![\d.,]){re.escape(rate)}\s?%", t.name):
        return f"{t.name}{f' ({compound[2:]})' if compound else ''}"
    return f"{t.name} ({rate} %{compound})"


def _stamp(inv: Invoice, today: date) -> dict | None:
    if inv.kind == "credit_note":
        return None
    if inv.status == "paid":
        return {"css": "paid", "label": "Paid"}
    if inv.status == "void":
        return {"css": "void", "label": "Void"}
    if inv.status == "draft":
        return {"css": "draft", "label": "Draft"}
    if inv.kind == "invoice" and inv.due_date and inv.due_date < today and inv.amount_due > 0:
        return {"css": "overdue", "label": "Overdue"}
    return None


def invoice_document(invoice_id: int) -> Document:
    """An invoice or a credit note, ready for its template."""
    db = _db()
    inv = _one(Invoice, invoice_id)
    account = _account(inv.account_id)
    settings = settings_for(inv.tenant_id)
    f = formats_for(account, settings, inv.currency, inv.timezone)
    lines = db.session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id)
                               .order_by(InvoiceLine.position, InvoiceLine.id)).scalars().all()
    taxes = db.session.execute(select(InvoiceTax).where(InvoiceTax.invoice_id == inv.id)
                               .order_by(InvoiceTax.position, InvoiceTax.id)).scalars().all()
    is_note = inv.kind == "credit_note"
    doc = Document(kind=inv.kind, title=TITLES[inv.kind], number=inv.number or "Draft", lang=f.locale.split("_")[0],
                   seller=seller_of(inv.seller, settings, _tenant_name(inv.tenant_id)),
                   customer=customer_of(inv.customer, account), logo=logo_data_uri(settings),
                   footer=settings.get("footer") or "", stamp=_stamp(inv, today_in(f.tz)))
    doc.facts = [("Account", doc.customer["account_number"]),
                 ("Issue date", f.date(inv.issued_at) if inv.issued_at else "Not issued"),
                 ("Period", f.period(inv.period_start, inv.period_end))]
    if not is_note and inv.due_date:
        doc.facts.insert(2, ("Due date", f.date(inv.due_date)))
    doc.facts.append(("Time zone", f.tz))
    with_rates = bool(settings.get("include_rate_table"))
    doc.lines = _line_rows(lines, f, with_detail=True)
    if with_rates and not is_note:
        doc.rate_table = _rate_table(inv.account_id, local_midnight_utc(inv.period_start, f.tz),
                                     local_midnight_utc(inv.period_end, f.tz), f) or None
    doc.totals = [{"label": "Subtotal", "value": f.money(inv.subtotal)}]
    for t in taxes:
        doc.totals.append({"label": _tax_label(t, f), "base": f"on {f.money(t.base)}", "value": f.money(t.amount)})
    if inv.tax_exempt_reason:
        doc.notes.append(f"Tax exempt: {inv.tax_exempt_reason}")
    doc.totals.append({"label": "Total", "value": f.money(inv.total), "css": "grand"})
    if is_note:
        original = db.session.execute(select(Invoice).where(Invoice.id == inv.credit_note_for_id)).scalar_one_or_none()
        ref = original.number if original is not None else "—"
        doc.notes.insert(0, f"Credit note for invoice {ref}" + (f", issued {f.date(original.issued_at)}"
                                                               if original is not None and original.issued_at else "") + ".")
        if inv.void_reason:
            doc.notes.append(f"Reason: {inv.void_reason}")
        doc.pay_info = [f"This credit note cancels invoice {ref} in full ({f.money(-Decimal(inv.total))}): "
                        "the amount was credited back to your account."]
        return doc
    paid = Decimal(inv.amount_paid or 0)
    if paid:
        doc.totals.append({"label": "Paid", "value": f.money(-paid)})
        doc.totals.append({"label": "Amount due", "value": f.money(inv.amount_due), "css": "due"})
    if inv.status == "void":
        note = db.session.execute(select(Invoice).where(Invoice.credit_note_for_id == inv.id)).scalar_one_or_none()
        doc.notes_warn = True
        doc.notes.insert(0, f"Voided on {f.date(inv.voided_at)}" + (f": {inv.void_reason}" if inv.void_reason else "")
                         + (f". Cancelled by credit note {note.number}." if note is not None and note.number else "."))
    elif inv.status == "paid":
        doc.pay_info = [f"Paid in full on {f.date(inv.paid_at)}. Thank you."]
    elif inv.status == "open" and inv.amount_due > 0:
        doc.pay_info = [f"Please pay {f.money(inv.amount_due)} by {f.date(inv.due_date)}, quoting {inv.number}.",
                        "You can pay online from the Bills page of your customer portal."]
        if doc.seller["email"]:
            doc.pay_info.append(f"Questions about this invoice: {doc.seller['email']}")
    if settings.get("include_payment_summary"):
        doc.payment_summary = _payment_summary(inv, f)
    return doc


def _payment_summary(inv: Invoice, f: Formats) -> list[dict]:
    """Credits of the period (ledger) and payments applied to this invoice, by date."""
    db = _db()
    start, end = local_midnight_utc(inv.period_start, f.tz), local_midnight_utc(inv.period_end, f.tz)
    rows = []
    for e in db.session.execute(select(LedgerEntry).where(LedgerEntry.account_id == inv.account_id,
                                                          LedgerEntry.created_at >= start, LedgerEntry.created_at < end,
                                                          LedgerEntry.amount > 0, LedgerEntry.kind.in_(CREDIT_KINDS))
                                .order_by(LedgerEntry.created_at, LedgerEntry.id)).scalars():
        rows.append((e.created_at, {"date": f.date(e.created_at),
                                    "description": e.description or e.kind.replace("_", " ").capitalize(),
                                    "amount": f.money(e.amount)}))
    for p in db.session.execute(select(InvoicePayment).where(InvoicePayment.invoice_id == inv.id)
                                .order_by(InvoicePayment.created_at, InvoicePayment.id)).scalars():
        extra = Decimal(p.received) - Decimal(p.amount)
        desc = f"Applied to {inv.number}"
        if extra > 0:
            desc += f" (of {f.money(p.received)} received; {f.money(extra)} kept as credit on the account)"
        rows.append((p.created_at, {"date": f.date(p.created_at), "description": desc, "amount": f.money(p.amount)}))
    rows.sort(key=lambda r: r[0])
    return [r for _, r in rows]


def statement_document(statement_id: int) -> Document:
    db = _db()
    st = _one(Statement, statement_id)
    account = _account(st.account_id)
    settings = settings_for(st.tenant_id)
    f = formats_for(account, settings, st.currency, st.timezone)
    lines = db.session.execute(select(StatementLine).where(StatementLine.statement_id == st.id)
                               .order_by(StatementLine.position, StatementLine.id)).scalars().all()
    doc = Document(kind="statement", title=TITLES["statement"], number=st.period_key, lang=f.locale.split("_")[0],
                   seller=seller_of(None, settings, _tenant_name(st.tenant_id)),
                   customer=customer_of(st.customer, account), logo=logo_data_uri(settings),
                   footer=settings.get("footer") or "")
    doc.labels = {**doc.labels, "customer": "Account holder"}
    doc.facts = [("Account", doc.customer["account_number"]), ("Period", f.period(st.period_start, st.period_end)),
                 ("Date", f.date(st.created_at)), ("Time zone", f.tz)]
    doc.summary = {"opening": f.money(st.opening_balance), "credits": f.money(st.credits),
                   "charges": f.money(st.charges), "closing": f.money(st.closing_balance)}
    credits = [ln for ln in lines if Decimal(ln.amount) > 0]
    charges = [ln for ln in lines if Decimal(ln.amount) <= 0]
    rows = []
    if credits:
        rows.append({"group": "Credits"})
        rows += _line_rows(credits, f, with_detail=True)
    if charges:
        rows.append({"group": "Charges"})
        rows += _line_rows(charges, f, with_detail=True)
    doc.lines = rows
    if settings.get("include_rate_table"):
        doc.rate_table = _rate_table(st.account_id, local_midnight_utc(st.period_start, f.tz),
                                     local_midnight_utc(st.period_end, f.tz), f) or None
    from app.invoicing.taxes import applicable

    if applicable(st.account_id):
        doc.notes = ["Prepaid account: taxes are included in each top-up (see its receipt); charges carry none."]
    return doc


def receipt_document(receipt_id: int) -> Document:
    r = _one(Receipt, receipt_id)
    account = _account(r.account_id)
    settings = settings_for(r.tenant_id)
    f = formats_for(account, settings, r.currency)
    doc = Document(kind="receipt", title=TITLES["receipt"], number=r.number, lang=f.locale.split("_")[0],
                   seller=seller_of(r.seller, settings, _tenant_name(r.tenant_id)),
                   customer=customer_of(r.customer, account), logo=logo_data_uri(settings),
                   footer=settings.get("footer") or "", stamp={"css": "paid", "label": "Received"})
    doc.labels = {**doc.labels, "customer": "Received from"}
    method = (r.method or r.kind or "").replace("_", " ")
    doc.facts = [("Account", doc.customer["account_number"]), ("Date", f.date(r.issued_at)),
                 ("Method", method.capitalize() if method else "—")]
    if r.reference:
        doc.facts.append(("Reference", r.reference))
    doc.amount = f.money(r.amount)
    doc.received_label = "Amount received" if r.kind == "payment" else "Credit added"
    doc.received_detail = f"on {f.date(r.issued_at)}" + (f" · {method}" if method else "")
    taxes = list(r.taxes or [])
    if taxes:
        doc.totals = [{"label": "Credited to your balance", "value": f.money(r.net)}]
        for t in taxes:
            rate = format_decimal(Decimal(str(t.get("rate", 0))).normalize(), locale=f.locale)
            doc.totals.append({"label": f"{t.get('name')} ({rate} %) included", "value": f.money(Decimal(str(t.get('amount', 0))))})
        doc.totals.append({"label": "Total received", "value": f.money(r.amount), "css": "grand"})
    doc.pay_info = ["Thank you for your payment." if r.kind == "payment" else "This credit was added to your account.",
                    f"{f.money(r.net)} was credited to the balance of account {doc.customer['account_number']}."]
    return doc


BUILDERS = {"invoice": invoice_document, "credit_note": invoice_document, "statement": statement_document,
            "receipt": receipt_document}


# --- HTML and PDF -----------------------------------------------------------------------------

def render_html(doc: Document, toolbar: dict | None = None) -> str:
    template = current_app.jinja_env.get_template(TEMPLATES[doc.kind])
    return template.render(doc=doc, toolbar=toolbar)


def _fetcher():
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"})


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=_fetcher(), base_url=None).write_pdf()


def render_pdf(doc: Document) -> bytes:
    return html_to_pdf(render_html(doc))


def document(kind: str, id_: int) -> Document:
    if kind not in BUILDERS:
        raise DocumentNotFound(kind)
    return BUILDERS[kind](id_)


def filename(doc: Document) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in (doc.number or "draft"))
    return f"{doc.kind.replace('_', '-')}-{safe}.pdf"


def sample_invoice(tenant_id: int, currency: str, settings: dict | None = None, tenant_name: str = "") -> Document:
    """What an invoice of this reseller looks like with its settings (the settings page's
    preview): made-up customer and lines, the real issuer, logo, decimals, options and footer."""
    settings = settings if settings is not None else settings_for(tenant_id)
    f = Formats(currency=currency.upper(), locale=money.DEFAULT_LOCALE, decimals=settings.get("decimals_shown"))
    today = date.today()
    start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    end = today.replace(day=1)
    prefix = (settings.get("number_prefix") or "").replace("{year}", str(today.year))
    number = prefix + "1".rjust(int(settings.get("number_digits") or 6), "0")
    doc = Document(kind="invoice", title=TITLES["invoice"], number=number, lang="en",
                   seller=seller_of(None, settings, tenant_name or _tenant_name(tenant_id)),
                   customer={"name": "Jordan Example", "company": "Example Customer Ltd",
                             "address_lines": ["1 Sample Street", "Springfield"], "email": "accounts@customer.example",
                             "tax_number": "", "account_number": "1000000001"},
                   logo=logo_data_uri(settings), footer=settings.get("footer") or "", stamp={"css": "draft", "label": "Sample"})
    due = today + timedelta(days=int(settings.get("payment_terms_days") or 0))
    doc.facts = [("Account", "1000000001"), ("Issue date", f.date(today)), ("Due date", f.date(due)),
                 ("Period", f.period(start, end)), ("Time zone", "UTC")]
    amounts = [("Service plan (monthly)", "1", "25", "25"), ("Users × 5", "5", "4", "20"),
               ("Number +1 555 0100 (monthly)", "1", "1.5", "1.5")]
    doc.lines = [{"description": d, "detail": "", "quantity": f.number(Decimal(q)), "unit_price": f.money(Decimal(u)),
                  "amount": f.money(Decimal(a))} for d, q, u, a in amounts]
    doc.lines.append({"description": "Calls to United Kingdom", "detail": "214 calls", "quantity": f.minutes(Decimal("812.5")) + " min",
                      "unit_price": f.rate(Decimal("0.0123")) + "/min", "amount": f.money(Decimal("9.9938"))})
    subtotal = Decimal("56.4938")
    tax = money.quantize(subtotal * Decimal("0.2"), currency)
    total = money.quantize(subtotal, currency) + tax
    doc.totals = [{"label": "Subtotal", "value": f.money(subtotal)},
                  {"label": "VAT (20 %)", "base": f"on {f.money(subtotal)}", "value": f.money(tax)},
                  {"label": "Total", "value": f.money(total), "css": "grand"}]
    doc.pay_info = [f"Please pay {f.money(total)} by {f.date(due)}, quoting {number}.",
                    "You can pay online from the Bills page of your customer portal."]
    if settings.get("include_payment_summary"):
        doc.payment_summary = [{"date": f.date(start + timedelta(days=4)), "description": "Payment by card",
                                "amount": f.money(Decimal("50"))}]
    if settings.get("include_rate_table"):
        doc.rate_table = [{"prefix": "447", "destination": "United Kingdom mobile", "rate": f.rate(Decimal("0.0123")),
                           "connect_fee": "", "calls": "214", "minutes": f.minutes(Decimal("812.5")),
                           "amount": f.money(Decimal("9.9938"))}]
    return doc
