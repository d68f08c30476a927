"""Invoices, credit notes, statements and receipts as HTML and PDF (issue 17, point 5): the
reseller's name, address, tax number and logo, the customer's details, amounts in the account's
currency and locale, and the options (time zone, decimals shown, rate table, payment summary,
footer). PDFs are read back with poppler (pdftotext, pdfimages) and turned into PNGs under
test-artifacts/documents/ with pdftoppm, to look at."""
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from app.extensions import db
from app.invoicing import render
from tenants.scope import tenant_scope, unscoped
from tests.integration import invoice_docs_support as docs_support

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "documents"


def pdf_text(pdf: bytes, tmp_path, name="doc") -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils is not installed (scripts/setup --test installs it)")
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def keep_png(pdf: bytes, name: str) -> list[Path]:
    """The PDF and its pages as PNGs under test-artifacts/documents/ (to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "70", str(path), str(ARTIFACTS / name)], check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


@pytest.fixture
def german(world):
    """Reseller A with settings and a logo; an account in German, euros, Berlin time."""
    from app.accounts.models import Account

    with unscoped():
        account = db.session.execute(db.select(Account).where(Account.id == world.account_a.id)).scalar_one()
        account.language, account.country, account.currency, account.timezone = "de", "DE", "EUR", "Europe/Berlin"
        account.company = "Harbour Logistics KG"
        db.session.commit()
    docs_support.settings(world.a, logo=docs_support.LOGO_SVG, logo_type="image/svg+xml",
                          footer="IBAN DE89 3704 0044 0532 0130 00 · Amtsgericht Berlin HRB 12345")
    return world


def _doc(kind, id_, tenant):
    with tenant_scope(tenant.id):
        return render.document(kind, id_)


def test_an_invoice_says_who_issues_it_to_whom_and_what_in_the_customers_locale(german, tmp_path):
    inv = docs_support.invoice(german.account_a)
    doc = _doc("invoice", inv.id, german.a)
    html = render.render_html(doc)
    for text in ("Acme Telecom GmbH", "Hauptstraße 12", "DE123456789", "billing@acme.example",
                 "Harbour Logistics KG", "Kaiserkai 3", "DE987654321", german.account_a.account_number,
                 "ACME-2026-000123", "Service plan Business (monthly)", "Calls to United Kingdom",
                 "49,00\xa0€", "103,23\xa0€", "VAT (19 %)", "19,61\xa0€", "122,84\xa0€",   # German amounts
                 "15.12.2026", "01.11.2026 – 30.11.2026", "Europe/Berlin",
                 "IBAN DE89", 'src="data:image/svg+xml;base64,'):
        assert text in html, (text, [t for t in doc.totals])
    pdf = render.render_pdf(doc)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    for needle in ("INVOICE", "ACME-2026-000123", "Acme Telecom GmbH", "Harbour Logistics KG", "122,84 €",
                   "Amount due" if Decimal(inv.amount_paid) else "Total", "page 1 of 1", "IBAN DE89"):
        assert needle in text, needle
    assert keep_png(pdf, "invoice-de")


def test_the_issue_date_is_the_account_time_zones_day(german):
    # 23:30 UTC on 30 November is already 1 December in Berlin
    inv = docs_support.invoice(german.account_a, issued_at=datetime(2026, 11, 30, 23, 30))
    facts = dict(_doc("invoice", inv.id, german.a).facts)
    assert facts["Issue date"] == "01.12.2026"


def test_decimals_shown_apply_to_every_amount_and_rates_keep_four(german):
    from app.invoicing.models import InvoiceSettings

    with unscoped():
        db.session.execute(db.update(InvoiceSettings).values(decimals_shown=3))
        db.session.commit()
    inv = docs_support.invoice(german.account_a)
    html = render.render_html(_doc("invoice", inv.id, german.a))
    assert "49,000\xa0€" in html and "122,840\xa0€" in html
    assert "0,0500\xa0€/min" in html            # a per-minute rate: at least 4 decimals
    with unscoped():
        db.session.execute(db.update(InvoiceSettings).values(decimals_shown=0))
        db.session.commit()
    html = render.render_html(_doc("invoice", inv.id, german.a))
    assert "123\xa0€" in html                   # 122.84 rounded half-up for display


def test_the_rate_table_lists_the_rates_that_priced_the_periods_calls(german):
    from app.invoicing.models import InvoiceSettings

    docs_support.rated_calls(german.account_a, [("4420", "GB", "United Kingdom London", "0.0100"),
                                                ("447", "GB", "United Kingdom mobile", "0.0500"),
                                                ("49", "DE", "", "0.0200")],
                             [("447", 60, "0.0500"), ("447", 120, "0.1000"), ("4420", 30, "0.0050"),
                              ("49", 90, "0.0300")], datetime(2026, 11, 10, 12, 0))
    # a call debited after the period closed belongs to the next invoice
    docs_support.rated_calls(german.account_a, [("33", "FR", "France", "0.0300")], [("33", 60, "0.0300")],
                             datetime(2026, 12, 2, 12, 0))
    inv = docs_support.invoice(german.account_a)
    assert _doc("invoice", inv.id, german.a).rate_table is None          # off by default
    with unscoped():
        db.session.execute(db.update(InvoiceSettings).values(include_rate_table=True))
        db.session.commit()
    rows = _doc("invoice", inv.id, german.a).rate_table
    assert [(r["prefix"], r["destination"], r["rate"], r["calls"], r["minutes"], r["amount"]) for r in rows] == [
        ("4420", "United Kingdom London", "0,0100\xa0€", "1", "0,5", "0,01\xa0€"),
        ("447", "United Kingdom mobile", "0,0500\xa0€", "2", "3,0", "0,15\xa0€"),
        ("49", "Deutschland", "0,0200\xa0€", "1", "1,5", "0,03\xa0€"),        # no description: the country's name
    ]


def test_the_payment_summary_shows_the_periods_credits_and_can_be_left_out(german):
    from app import ledger
    from app.invoicing.models import InvoiceSettings
    from app.ledger import LedgerEntry

    with unscoped():
        ledger.post(german.account_a.id, Decimal("40"), "payment", "manual:bank_transfer:T-1",
                    description="Payment T-1")
        db.session.execute(db.update(LedgerEntry).where(LedgerEntry.idempotency_key == "manual:bank_transfer:T-1")
                           .values(created_at=datetime(2026, 11, 5, 9, 0)))
        db.session.commit()
    inv = docs_support.invoice(german.account_a)
    summary = _doc("invoice", inv.id, german.a).payment_summary
    assert [(p["date"], p["description"], p["amount"]) for p in summary] == [("05.11.2026", "Payment T-1", "40,00\xa0€")]
    with unscoped():
        db.session.execute(db.update(InvoiceSettings).values(include_payment_summary=False))
        db.session.commit()
    doc = _doc("invoice", inv.id, german.a)
    assert doc.payment_summary is None
    assert "Payment summary" not in render.render_html(doc)


def test_compound_taxes_exemptions_and_status_stamps_are_shown(german):
    inv = docs_support.invoice(german.account_a, taxes=[("GST", "5", False), ("QST", "9.975", True)],
                               status="paid", amount_paid="123.00")
    with unscoped():
        db.session.execute(db.update(type(inv)).where(type(inv).id == inv.id).values(paid_at=datetime(2026, 12, 3, 10)))
        db.session.commit()
    doc = _doc("invoice", inv.id, german.a)
    labels = [t["label"] for t in doc.totals]
    assert labels[:3] == ["Subtotal", "GST (5 %)", "QST (9,975 %, compound)"]
    assert doc.stamp == {"css": "paid", "label": "Paid"}
    assert doc.pay_info == ["Paid in full on 03.12.2026. Thank you."]
    exempt = docs_support.invoice(german.account_a, number="ACME-2026-000124", taxes=[],
                                  period=(date(2026, 10, 1), date(2026, 11, 1)), tax_exempt_reason="Reverse charge, art. 196")
    doc = _doc("invoice", exempt.id, german.a)
    assert "Tax exempt: Reverse charge, art. 196" in doc.notes
    overdue = docs_support.invoice(german.account_a, number="ACME-2026-000125", due_date=date(2026, 1, 1),
                                   period=(date(2025, 12, 1), date(2026, 1, 1)))
    assert _doc("invoice", overdue.id, german.a).stamp == {"css": "overdue", "label": "Overdue"}


def test_a_credit_note_names_the_invoice_it_cancels(german, tmp_path):
    inv = docs_support.invoice(german.account_a, status="void", voided_at=datetime(2026, 12, 4, 10),
                               void_reason="Billed to the wrong company")
    note = docs_support.invoice(german.account_a, kind="credit_note", number="ACME-2026-000124",
                                credit_note_for_id=inv.id, void_reason="Billed to the wrong company",
                                issued_at=datetime(2026, 12, 4, 10))
    doc = _doc("credit_note", note.id, german.a)
    assert doc.title == "Credit note"
    assert doc.notes[0] == "Credit note for invoice ACME-2026-000123, issued 01.12.2026."
    assert "Reason: Billed to the wrong company" in doc.notes
    assert any(t["value"] == "-122,84\xa0€" for t in doc.totals)
    text = pdf_text(render.render_pdf(doc), tmp_path)
    assert "CREDIT NOTE" in text and "ACME-2026-000124" in text
    keep_png(render.render_pdf(doc), "credit-note-de")
    voided = _doc("invoice", inv.id, german.a)
    assert voided.stamp["label"] == "Void"
    assert voided.notes[0] == ("Voided on 04.12.2026: Billed to the wrong company. "
                               "Cancelled by credit note ACME-2026-000124.")


def test_a_statement_and_a_receipt_render(german, tmp_path):
    st = docs_support.statement(german.account_a)
    doc = _doc("statement", st.id, german.a)
    assert doc.summary == {"opening": "12,50\xa0€", "credits": "50,00\xa0€", "charges": "-23,46\xa0€",
                           "closing": "39,04\xa0€"}
    pdf = render.render_pdf(doc)
    text = pdf_text(pdf, tmp_path, "statement")
    assert "STATEMENT" in text and "Calls to Germany" in text and "39,04 €" in text
    keep_png(pdf, "statement-de")
    r = docs_support.receipt(german.account_a)
    doc = _doc("receipt", r.id, german.a)
    assert doc.amount == "59,50\xa0€"
    assert [(t["label"], t["value"]) for t in doc.totals] == [
        ("Credited to your balance", "50,00\xa0€"), ("VAT (19 %) included", "9,50\xa0€"),
        ("Total received", "59,50\xa0€")]
    pdf = render.render_pdf(doc)
    assert "RCT-2026-000007" in pdf_text(pdf, tmp_path, "receipt")
    keep_png(pdf, "receipt-de")


def test_a_document_of_another_tenant_is_not_found(german):
    inv = docs_support.invoice(german.account_a)
    with pytest.raises(render.DocumentNotFound):
        _doc("invoice", inv.id, german.b)


def test_documents_fetch_nothing_from_the_network(german):
    """The footer is text, and a URL in it stays text; an <img> pointing elsewhere is not fetched."""
    html = ('<html><body><img src="http://127.0.0.1:9/x.png"><img src="file:///etc/passwd">'
            '<p>hello</p></body></html>')
    pdf = render.html_to_pdf(html)
    assert pdf.startswith(b"%PDF")
    from weasyprint.urls import URLFetcher

    fetcher = render._fetcher()
    assert isinstance(fetcher, URLFetcher)
    for url in ("http://127.0.0.1:9/x.png", "file:///etc/passwd"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_the_sample_invoice_uses_the_settings(german, tmp_path):
    from app.invoicing.models import InvoiceSettings

    with unscoped():
        db.session.execute(db.update(InvoiceSettings).values(number_prefix="ACME-{year}-", number_digits=4,
                                                             include_rate_table=True))
        db.session.commit()
    with tenant_scope(german.a.id):
        doc = render.sample_invoice(german.a.id, "EUR", tenant_name=german.a.name)
    assert doc.number == f"ACME-{date.today().year}-0001"
    assert doc.rate_table and doc.logo.startswith("data:image/svg+xml;base64,")
    assert "Acme Telecom GmbH" in pdf_text(render.render_pdf(doc), tmp_path, "sample")


@pytest.mark.parametrize("name,rate,compound,label", [
    ("VAT", "19", False, "VAT (19 %)"),
    ("VAT 20%", "20", False, "VAT 20%"),             # the migration's names say their rate already
    ("VAT 7.5%", "7.5", False, "VAT 7.5%"),
    ("QST", "9.975", True, "QST (9.975 %, compound)"),
    ("Levy 15%", "5", False, "Levy 15% (5 %)"),      # another number in the name is not the rate
])
def test_a_tax_is_labelled_with_its_rate_once(name, rate, compound, label):
    from types import SimpleNamespace

    f = render.Formats("USD", "en_US")
    assert render._tax_label(SimpleNamespace(name=name, rate=Decimal(rate), compound=compound), f) == label
