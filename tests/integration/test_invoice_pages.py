"""Invoice pages (issue 17, point 6; issue 18, points 2 and 4): the reseller's invoices (all
accounts, one account; interval, status, totals per currency), each document as a page and a
PDF, void through a confirmation page, a manual payment against an invoice, the invoice settings
(logo checked); the customer's Bills; the "invoice issued" email with its PDF."""
import email
import io
import socket
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.invoicing.models import Invoice, InvoicePayment, InvoiceSettings
from tenants.scope import unscoped
from tests.integration import invoice_docs_support as docs_support

D = Decimal


def _invoice(invoice_id) -> Invoice:
    db.session.remove()
    with unscoped():
        return db.session.execute(select(Invoice).where(Invoice.id == invoice_id)).scalar_one()


@pytest.fixture
def bills(world, make_account):
    """Reseller A: an open, a paid and a void invoice of account A (USD), an overdue one of a EUR
    account; reseller B: one invoice (never shown to A). Their numbers use the default series
    INV-2026- up to 000004, so the tests' own numbering starts at 000005."""
    eur = make_account(world.a, name="Euro Cafe", currency="EUR")
    today = date.today()
    out = {
        "open": docs_support.invoice(world.account_a, number="INV-2026-000001", due_date=today + timedelta(days=10)),
        "paid": docs_support.invoice(world.account_a, number="INV-2026-000002", status="paid", amount_paid="122.84",
                                     period=(date(2026, 10, 1), date(2026, 11, 1)), issued_at=datetime(2026, 11, 1, 6),
                                     due_date=date(2026, 11, 15)),
        "void": docs_support.invoice(world.account_a, number="INV-2026-000003", status="void",
                                     period=(date(2026, 9, 1), date(2026, 10, 1)), issued_at=datetime(2026, 10, 1, 6),
                                     voided_at=datetime(2026, 10, 2), void_reason="Wrong company"),
        "eur": docs_support.invoice(eur, number="INV-2026-000004", taxes=[], due_date=today - timedelta(days=3)),
        "b": docs_support.invoice(world.account_b, number="B-2026-000001"),
    }
    out["eur_account"] = eur
    from app.invoicing.models import InvoiceSequence

    with unscoped():
        db.session.add(InvoiceSequence(tenant_id=world.a.id, series="INV-2026-", last_number=4))
        db.session.commit()
    return out


def test_the_reseller_sees_every_accounts_invoices_with_totals_per_currency(world, bills, client, login):
    login(client, world.owner_a)
    resp = client.get("/reseller/invoices")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for number in ("INV-2026-000001", "INV-2026-000002", "INV-2026-000003", "INV-2026-000004"):
        assert number in html
    assert "B-2026-000001" not in html
    # USD: invoiced = open + paid (void left out), paid 122.84, outstanding = the open one
    usd = html[html.index('data-currency="USD"'):html.index("</article>", html.index('data-currency="USD"'))]
    assert "Invoiced <strong>$245.68</strong>" in usd and "Paid <strong>$122.84</strong>" in usd
    assert "$122.84</strong>" in usd.split("Outstanding")[1]
    assert 'data-currency="EUR"' in html and "€103.23" in html


def test_the_invoices_filter_by_status_and_interval_and_refuse_bad_values(world, bills, client, login):
    login(client, world.owner_a)
    html = client.get("/reseller/invoices?status=paid").get_data(as_text=True)
    assert "INV-2026-000002" in html and "INV-2026-000001" not in html
    html = client.get("/reseller/invoices?status=overdue").get_data(as_text=True)
    assert "INV-2026-000004" in html and "INV-2026-000001" not in html and "INV-2026-000002" not in html
    html = client.get("/reseller/invoices?date_from=2026-10-15&date_to=2026-11-30").get_data(as_text=True)
    assert "INV-2026-000002" in html and "INV-2026-000001" not in html and "INV-2026-000003" not in html
    resp = client.get("/reseller/invoices?date_from=31/12/2026&status=nonsense")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Use a date like 2026-12-31." in html and "Unknown status." in html
    html = client.get(f"/reseller/accounts/{bills['eur_account'].id}/invoices").get_data(as_text=True)
    assert "INV-2026-000004" in html and "INV-2026-000001" not in html


def test_an_invoice_is_a_page_and_a_pdf_and_another_tenants_is_not_found(world, bills, client, login):
    login(client, world.owner_a)
    inv = bills["open"]
    resp = client.get(f"/reseller/invoices/{inv.id}")
    assert resp.status_code == 200 and "INV-2026-000001" in resp.get_data(as_text=True)
    assert f"/reseller/invoices/{inv.id}/void" in resp.get_data(as_text=True)
    pdf = client.get(f"/reseller/invoices/{inv.id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert 'filename="invoice-INV-2026-000001.pdf"' in pdf.headers["Content-Disposition"]
    assert client.get(f"/reseller/invoices/{bills['b'].id}").status_code == 404
    assert client.get(f"/reseller/invoices/{bills['b'].id}/pdf").status_code == 404


def test_voiding_asks_for_a_reason_then_issues_a_credit_note(world, bills, client, login):
    login(client, world.owner_a)
    inv = bills["open"]
    page = client.get(f"/reseller/invoices/{inv.id}/void")
    assert page.status_code == 200 and "credit note" in page.get_data(as_text=True)
    resp = client.post(f"/reseller/invoices/{inv.id}/void", data={"reason": "  "})
    assert resp.status_code == 422 and "Say why the invoice is voided" in resp.get_data(as_text=True)
    assert _invoice(inv.id).status == "open"
    resp = client.post(f"/reseller/invoices/{inv.id}/void", data={"reason": "Billed to the wrong company"})
    assert resp.status_code == 303
    voided = _invoice(inv.id)
    assert voided.status == "void" and voided.void_reason == "Billed to the wrong company"
    with unscoped():
        note = db.session.execute(select(Invoice).where(Invoice.credit_note_for_id == inv.id)).scalar_one()
        assert note.kind == "credit_note" and note.total == -inv.total and note.number
    assert resp.headers["Location"].endswith(f"/reseller/invoices/{note.id}")
    again = client.post(f"/reseller/invoices/{inv.id}/void", data={"reason": "twice"})
    assert again.status_code == 422 and "cannot be voided" in again.get_data(as_text=True)


def test_a_read_only_login_sees_invoices_but_cannot_void(world, bills, client, login, make_login):
    ro = make_login(world.a, "reseller_readonly")
    login(client, ro)
    inv = bills["open"]
    page = client.get(f"/reseller/invoices/{inv.id}").get_data(as_text=True)
    assert "void-invoice" not in page and "record-payment" not in page
    assert client.post(f"/reseller/invoices/{inv.id}/void", data={"reason": "x"}).status_code == 403
    assert _invoice(inv.id).status == "open"


def test_a_manual_payment_can_pay_an_invoice(world, bills, client, login):
    from tests.integration.invoicing_support import balance

    login(client, world.owner_a)
    inv = bills["open"]
    with unscoped():
        db.session.execute(db.update(type(world.account_a)).where(type(world.account_a).id == world.account_a.id)
                           .values(billing_type="postpaid"))
        db.session.commit()
    page = client.get(f"/reseller/accounts/{world.account_a.id}/payments/new?invoice_id={inv.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'value="122.84"' in html and "INV-2026-000001" in html
    bad = client.post(f"/reseller/accounts/{world.account_a.id}/payments/new",
                      data={"method": "bank_transfer", "reference": "", "paid_on": "2026-12-03", "amount": "abc",
                            "invoice_id": str(inv.id)})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "Enter the transfer" in text and "is not a number" in text
    elsewhere = client.post(f"/reseller/accounts/{world.account_a.id}/payments/new",
                            data={"method": "bank_transfer", "reference": "T-9", "paid_on": "2026-12-03",
                                  "amount": "10", "invoice_id": str(bills["eur"].id)})
    assert elsewhere.status_code == 422 and "Choose an open invoice of this account." in elsewhere.get_data(as_text=True)
    before = balance(world.account_a.id)
    resp = client.post(f"/reseller/accounts/{world.account_a.id}/payments/new",
                       data={"method": "bank_transfer", "reference": "T-1", "paid_on": "2026-12-03",
                             "amount": "150.00", "invoice_id": str(inv.id)})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/reseller/invoices/{inv.id}")
    paid = _invoice(inv.id)
    assert paid.status == "paid" and paid.amount_paid == D("122.84")
    assert balance(world.account_a.id) == before + D("150.00")          # the rest stays as credit
    with unscoped():
        applied = db.session.execute(select(InvoicePayment).where(InvoicePayment.invoice_id == inv.id)).scalar_one()
        assert (applied.amount, applied.received) == (D("122.84"), D("150.00"))
    # the same reference again credits nothing more
    client.post(f"/reseller/accounts/{world.account_a.id}/payments/new",
                data={"method": "bank_transfer", "reference": "T-1", "paid_on": "2026-12-03", "amount": "150.00"})
    assert balance(world.account_a.id) == before + D("150.00")


# --- settings --------------------------------------------------------------------------------

def _png(width=40, height=20, fmt="PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (29, 78, 216)).save(out, fmt)
    return out.getvalue()


SETTINGS = {"legal_name": "Acme Telecom Ltd", "address": "1 Quay Street\nPortland", "tax_number": "GB123",
            "email": "billing@acme.example", "number_prefix": "ACME-{year}-", "number_digits": "5",
            "receipt_prefix": "RCT-{year}-", "payment_terms_days": "30", "issue_hour": "6",
            "invoice_format": "pdf", "decimals_shown": "3", "include_rate_table": "y",
            "include_payment_summary": "y", "footer": "Bank: IBAN GB00 0000"}


def _settings(tenant_id):
    db.session.remove()
    with unscoped():
        return db.session.execute(select(InvoiceSettings).where(InvoiceSettings.tenant_id == tenant_id)).scalar_one_or_none()


def test_the_owner_saves_invoice_settings_with_a_logo(world, client, login):
    login(client, world.owner_a)
    page = client.get("/reseller/invoice-settings")
    assert page.status_code == 200 and 'value="INV-{year}-"' in page.get_data(as_text=True)
    resp = client.post("/reseller/invoice-settings", data={**SETTINGS, "logo": (io.BytesIO(_png()), "logo.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 303
    row = _settings(world.a.id)
    assert (row.legal_name, row.number_prefix, row.number_digits, row.payment_terms_days, row.decimals_shown,
            row.include_rate_table, row.include_payment_summary, row.skip_zero, row.issue_hour) == (
        "Acme Telecom Ltd", "ACME-{year}-", 5, 30, 3, True, True, False, 6)
    assert row.logo_type == "image/png" and bytes(row.logo) == _png()
    page = client.get("/reseller/invoice-settings").get_data(as_text=True)
    assert 'id="logo-preview"' in page and "data:image/png;base64," in page
    # saving without a file keeps the logo; "remove" removes it
    client.post("/reseller/invoice-settings", data=SETTINGS, content_type="multipart/form-data")
    assert _settings(world.a.id).logo_type == "image/png"
    client.post("/reseller/invoice-settings", data={**SETTINGS, "remove_logo": "y"}, content_type="multipart/form-data")
    assert _settings(world.a.id).logo_type == "" and _settings(world.a.id).logo is None
    preview = client.get("/reseller/invoice-settings/preview")
    assert preview.status_code == 200 and f"ACME-{date.today().year}-00001" in preview.get_data(as_text=True)
    pdf = client.get("/reseller/invoice-settings/preview?format=pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")


@pytest.mark.parametrize("upload,message", [
    ((b"GIF89a" + b"\x00" * 40, "logo.gif"), "not a PNG, JPEG or SVG image we can read"),
    ((b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "logo.png"), "not a PNG, JPEG or SVG image we can read"),   # a broken PNG
    ((b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "logo.svg"), "scripts"),
    ((b"<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY x 'y'>]><svg>&x;</svg>", "bomb.svg"), "DOCTYPE"),
    ((b"<svg xmlns='http://www.w3.org/2000/svg'><image href='http://127.0.0.1/x.png'/></svg>", "l.svg"),
     "refers to other files"),
    ((b"<svg", "broken.svg"), "not well-formed"),
    ((b"", "empty.png"), None),                       # no file chosen: nothing changes
])
def test_a_bad_logo_is_refused_next_to_the_field_and_nothing_is_saved(world, client, login, upload, message):
    login(client, world.owner_a)
    resp = client.post("/reseller/invoice-settings", data={**SETTINGS, "logo": (io.BytesIO(upload[0]), upload[1])},
                       content_type="multipart/form-data")
    if message is None:
        assert resp.status_code == 303 and _settings(world.a.id).logo_type == ""
        return
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'id="logo-error"' in html and message in html
    assert _settings(world.a.id) is None


def test_a_logo_too_large_in_bytes_or_pixels_is_refused(world, client, login):
    from app.invoicing.options import LOGO_MAX_BYTES

    login(client, world.owner_a)
    big = b"\x89PNG" + b"\x00" * (LOGO_MAX_BYTES + 10)
    resp = client.post("/reseller/invoice-settings", data={**SETTINGS, "logo": (io.BytesIO(big), "big.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "at most 512 KB" in resp.get_data(as_text=True)
    wide = _png(4100, 10)
    resp = client.post("/reseller/invoice-settings", data={**SETTINGS, "logo": (io.BytesIO(wide), "wide.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "4100×10 pixels" in resp.get_data(as_text=True)
    jpeg = _png(fmt="JPEG")
    resp = client.post("/reseller/invoice-settings", data={**SETTINGS, "logo": (io.BytesIO(jpeg), "photo.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 303 and _settings(world.a.id).logo_type == "image/jpeg"   # the content decides


@pytest.mark.parametrize("field,value,message", [
    ("number_prefix", "INV-{month}-", "Use letters, digits, spaces"),
    ("number_prefix", "A" * 41, "longer than 40 characters"),
    ("receipt_prefix", "ACME-{year}-", "Receipts need a prefix of their own"),
    ("number_digits", "2", "from 3 to 12"),
    ("payment_terms_days", "-1", "from 0 to 365"),
    ("payment_terms_days", "ten", "from 0 to 365"),
    ("issue_hour", "24", "from 0 to 23"),
    ("decimals_shown", "7", "from 0 to 4"),
    ("email", "not-an-email", "email"),
    ("invoice_format", "docx", "Not a valid choice."),
])
def test_bad_settings_get_a_message_next_to_the_field(world, client, login, field, value, message):
    login(client, world.owner_a)
    resp = client.post("/reseller/invoice-settings", data={**SETTINGS, field: value}, content_type="multipart/form-data")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'id="{field}-error"' in html and message in html
    assert _settings(world.a.id) is None


def test_only_the_owner_saves_invoice_settings(world, client, login):
    login(client, world.staff_a)
    assert client.get("/reseller/invoice-settings").status_code == 200
    resp = client.post("/reseller/invoice-settings", data=SETTINGS, content_type="multipart/form-data")
    assert resp.status_code == 403 and _settings(world.a.id) is None


# --- the customer's Bills ----------------------------------------------------------------------

def test_the_customer_sees_its_bills_paid_and_unpaid_by_interval(world, bills, client, login):
    st = docs_support.statement(world.account_a)
    r = docs_support.receipt(world.account_a)
    login(client, world.customer_a)
    resp = client.get("/portal/invoices")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for number in ("INV-2026-000001", "INV-2026-000002", "INV-2026-000003", "RCT-2026-000007", "2026-11"):
        assert number in html
    assert "INV-2026-000004" not in html and "B-2026-000001" not in html          # another account's, another tenant's
    assert '$122.84 unpaid' in html
    assert html.count('class="pay-bill"') == 1                                    # only the open one
    unpaid = client.get("/portal/invoices?status=unpaid").get_data(as_text=True)
    assert "INV-2026-000001" in unpaid and "INV-2026-000002" not in unpaid and "RCT-2026-000007" not in unpaid
    october = client.get("/portal/invoices?date_from=2026-10-01&date_to=2026-10-31").get_data(as_text=True)
    assert "INV-2026-000003" in october and "INV-2026-000001" not in october
    bad = client.get("/portal/invoices?date_to=yesterday")
    assert bad.status_code == 422 and "Use a date like 2026-12-31." in bad.get_data(as_text=True)
    for url in (f"/portal/invoices/{bills['paid'].id}", f"/portal/statements/{st.id}", f"/portal/receipts/{r.id}"):
        assert client.get(url).status_code == 200
        pdf = client.get(url + "/pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/portal/invoices/{bills['eur'].id}").status_code == 404     # a sibling account's
    assert client.get(f"/portal/invoices/{bills['eur'].id}/pdf").status_code == 404


def test_a_portal_login_needs_the_bills_permission(world, bills, client, login, make_login):
    from app.logins.models import User
    from app.logins.operations import set_portal_permissions

    user = make_login(world.a, "account_user", account=world.account_a)
    login(client, user)
    assert client.get("/portal/invoices").status_code == 403
    with unscoped():
        set_portal_permissions(db.session.execute(select(User).where(User.id == user.id)).scalar_one(), ["invoices"])
        db.session.commit()
    assert client.get("/portal/invoices").status_code == 200
    assert client.get(f"/portal/invoices/{bills['open'].id}/pdf").status_code == 200
    # paying needs "payments": no Pay button, and the POST is refused
    assert 'class="pay-bill"' not in client.get("/portal/invoices").get_data(as_text=True)
    assert client.post(f"/portal/invoices/{bills['open'].id}/pay", data={"nonce": "abc"}).status_code == 403


# --- paying a bill with Stripe Checkout (the fake) ------------------------------------------

@pytest.fixture
def postpaid_bill(world):
    with unscoped():
        db.session.execute(db.update(type(world.account_a)).where(type(world.account_a).id == world.account_a.id)
                           .values(billing_type="postpaid"))
        db.session.commit()
    return docs_support.invoice(world.account_a, number="INV-2026-000010", period=(date(2026, 8, 1), date(2026, 9, 1)),
                                lines=[
        ("recurring", "Service plan", None, "1", "40.00", "40.00")], taxes=[("VAT", "20", False)])


def test_paying_a_bill_opens_checkout_for_its_open_amount_and_the_webhook_marks_it_paid(
        world, postpaid_bill, client, login, fake_stripe):
    from tests.conftest import STRIPE_TEST_WEBHOOK_SECRET
    from tests.fake_stripe import deliver
    from tests.integration.invoicing_support import balance

    inv = postpaid_bill                      # 48.00 due
    with unscoped():
        db.session.execute(db.update(Invoice).where(Invoice.id == inv.id).values(amount_paid=D("8.00")))
        db.session.commit()
    login(client, world.customer_a)
    resp = client.post(f"/portal/invoices/{inv.id}/pay", data={"nonce": "n1"})
    assert resp.status_code == 303 and "/pay/cs_test_" in resp.headers["Location"]
    (session,) = fake_stripe.sessions()
    assert session["amount_total"] == 4000 and session["metadata"] == {
        "account_id": str(world.account_a.id), "purpose": "invoice", "invoice_id": str(inv.id)}
    again = client.post(f"/portal/invoices/{inv.id}/pay", data={"nonce": "n1"})       # a double click
    assert again.headers["Location"] == resp.headers["Location"] and len(fake_stripe.sessions()) == 1
    assert _invoice(inv.id).status == "open"                    # nothing before the webhook
    before = balance(world.account_a.id)
    fake_stripe.pay(session["id"])
    (event,) = fake_stripe.wait_sent("checkout.session.completed")
    assert deliver(client, event, STRIPE_TEST_WEBHOOK_SECRET).status_code == 200
    paid = _invoice(inv.id)
    assert paid.status == "paid" and paid.amount_paid == D("48.00")
    assert balance(world.account_a.id) == before + D("40.00")
    assert deliver(client, event, STRIPE_TEST_WEBHOOK_SECRET).status_code == 200    # redelivered: nothing more
    assert balance(world.account_a.id) == before + D("40.00")
    # paid now: no button, and a late POST says so
    late = client.post(f"/portal/invoices/{inv.id}/pay", data={"nonce": "n2"})
    assert late.status_code == 422 and "there is nothing to pay" in late.get_data(as_text=True)


def test_a_bill_paid_twice_keeps_the_second_payment_as_credit(world, postpaid_bill, client, login, fake_stripe):
    from tests.conftest import STRIPE_TEST_WEBHOOK_SECRET
    from tests.fake_stripe import deliver
    from tests.integration.invoicing_support import balance

    inv = postpaid_bill
    login(client, world.customer_a)
    first = client.post(f"/portal/invoices/{inv.id}/pay", data={"nonce": "tab1"})
    second = client.post(f"/portal/invoices/{inv.id}/pay", data={"nonce": "tab2"})       # another tab
    assert first.headers["Location"] != second.headers["Location"]
    before = balance(world.account_a.id)
    for s in fake_stripe.sessions():
        fake_stripe.pay(s["id"])
    events = []
    for _ in range(50):
        events = fake_stripe.wait_sent("checkout.session.completed")
        if len(events) == 2:
            break
    for event in events:
        assert deliver(client, event, STRIPE_TEST_WEBHOOK_SECRET).status_code == 200
    paid = _invoice(inv.id)
    assert paid.status == "paid" and paid.amount_paid == D("48.00")
    assert balance(world.account_a.id) == before + D("96.00")        # both credited; 48.00 is credit now
    with unscoped():
        rows = db.session.execute(select(InvoicePayment.amount, InvoicePayment.received)
                                  .where(InvoicePayment.invoice_id == inv.id).order_by(InvoicePayment.id)).all()
    assert [tuple(r) for r in rows] == [(D("48.00"), D("48.00")), (D("0.00"), D("48.00"))]


def test_pay_refuses_an_expired_form_and_a_void_bill(world, bills, postpaid_bill, client, login, fake_stripe):
    login(client, world.customer_a)
    resp = client.post(f"/portal/invoices/{postpaid_bill.id}/pay", data={"nonce": ""})
    assert resp.status_code == 422 and "The form expired" in resp.get_data(as_text=True)
    resp = client.post(f"/portal/invoices/{bills['void'].id}/pay", data={"nonce": "n3"})
    assert resp.status_code == 422 and "This bill is void" in resp.get_data(as_text=True)
    assert client.post(f"/portal/invoices/{bills['b'].id}/pay", data={"nonce": "n4"}).status_code == 404
    assert fake_stripe.sessions() == []


# --- the "invoice issued" email ------------------------------------------------------------------

@pytest.fixture
def smtp(app, monkeypatch):
    from aiosmtpd.controller import Controller

    received = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False}.items():
        monkeypatch.setitem(app.config, key, value)
    # `_work` drains the queues: jobs an earlier test file left there (a billing run's) are not ours.
    from app.jobs import queue

    for name in (None, app.config["RQ_DOCUMENTS_QUEUE"]):
        queue(app, name).empty()
    yield received
    controller.stop()


def test_an_issued_invoice_is_emailed_with_its_pdf_once(app, make_tenant, make_account, smtp):
    from app.notifications.models import Notification
    from tests.integration.invoicing_support import make_postpaid, plain, post_at, run_documents

    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant, email="accounts@harbour.example")
    post_at(a.id, "-25.00", "recurring", "account:x:plan:2026-11", datetime(2026, 11, 2), "Service plan")
    run_documents(tenant.id)
    _work(app)
    (inv,) = [i for i in _all_invoices(a.id)]
    assert inv.number and inv.status == "open"
    db.session.remove()
    with unscoped():
        (letter,) = db.session.execute(select(Notification).where(Notification.kind == "invoice_issued")).scalars()
        assert letter.status == "sent" and letter.to_email == "accounts@harbour.example"
        assert letter.dedupe_key == f"document:invoice:{inv.id}" and letter.attachment_type == "application/pdf"
        assert inv.number in letter.subject and "$25.00" in letter.body
    (envelope,) = smtp
    msg = email.message_from_bytes(envelope.content)
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    (name, part), = parts.items()
    assert name == f"invoice-{inv.number}.pdf" and part.get_content_type() == "application/pdf"
    assert part.get_payload(decode=True).startswith(b"%PDF")
    # the same job again (a retry, a second worker): no second email
    from app.invoicing.mail import email_document

    assert email_document("invoice", inv.id, tenant.id) == "duplicate"
    run_documents(tenant.id)
    _work(app)
    assert len(smtp) == 1


def test_a_reseller_asking_for_html_gets_the_page_attached(app, make_tenant, make_account, smtp):
    from tests.integration.invoicing_support import make_postpaid, plain, post_at, run_documents, set_settings

    tenant = plain(make_tenant())
    set_settings(tenant, invoice_format="html")
    a = make_postpaid(make_account, tenant)
    post_at(a.id, "-25.00", "recurring", "account:x:plan:2026-11", datetime(2026, 11, 2), "Service plan")
    run_documents(tenant.id)
    _work(app)
    (envelope,) = smtp
    msg = email.message_from_bytes(envelope.content)
    (part,) = [p for p in msg.walk() if p.get_filename()]
    assert part.get_content_type() == "text/html" and part.get_filename().endswith(".html")
    assert b"INVOICE" in part.get_payload(decode=True).upper()


def _work(app):
    """Run the queued jobs (the document email, then the email delivery) as a worker would."""
    from workers.runner import SimpleWorker

    from app.jobs import queue, redis_connection

    db.session.remove()
    SimpleWorker([queue(app), queue(app, app.config["RQ_DOCUMENTS_QUEUE"])],
                 connection=redis_connection(app)).work(burst=True)


def _all_invoices(account_id):
    db.session.remove()
    with unscoped():
        return list(db.session.execute(select(Invoice).where(Invoice.account_id == account_id)).scalars())


def test_a_prepaid_payment_email_carries_its_numbered_receipt(world, client, login):
    """A prepaid account's payment gets a numbered receipt (app/invoicing/receipts.py); the
    payment-received email attaches it as a PDF."""
    from app.notifications.models import Notification
    from app.payments.models import Payment
    from app.payments.receipts import send_receipt

    tenant_id = world.a.id
    login(client, world.owner_a)
    resp = client.post(f"/reseller/accounts/{world.account_a.id}/payments/new",
                       data={"method": "cash", "reference": "C-1", "paid_on": date.today().isoformat(), "amount": "20"})
    assert resp.status_code == 303
    db.session.remove()
    with unscoped():
        payment = db.session.execute(select(Payment).where(Payment.reference == "C-1")).scalar_one()
    assert send_receipt(payment.id, tenant_id) == "queued"
    db.session.remove()
    with unscoped():
        (mail,) = db.session.execute(select(Notification).where(Notification.kind == "payment_received")).scalars()
        assert mail.attachment_type == "application/pdf" and bytes(mail.attachment_data).startswith(b"%PDF")
        number = mail.attachment_name[len("receipt-"):-len(".pdf")]
        assert number.startswith("RCT-") and f"Receipt {number}" in mail.body


def test_the_emails_of_a_batch_are_one_job_on_the_documents_queue_and_one_bad_document_stops_no_other(
        app, make_tenant, make_account, smtp, monkeypatch):
    from app.invoicing import mail
    from app.jobs import queue
    from tests.integration.invoicing_support import make_postpaid, plain, post_at, run_documents

    tenant = plain(make_tenant())
    accounts = [make_postpaid(make_account, tenant) for _ in range(3)]
    for n, a in enumerate(accounts):
        post_at(a.id, "-25.00", "recurring", f"account:{n}:plan:2026-11", datetime(2026, 11, 2), "Service plan")
    run_documents(tenant.id)
    assert queue(app).count == 0                                   # billing and invoicing jobs go first
    (job,) = queue(app, app.config["RQ_DOCUMENTS_QUEUE"]).jobs
    assert job.func_name == "workers.documents.email_documents" and len(job.args[1]) == 3
    broken = job.args[1][1][1]
    def failing(kind, doc_id, tenant_id, _real=mail.email_document):
        if doc_id == broken:
            raise RuntimeError("font gone")
        return _real(kind, doc_id, tenant_id)
    monkeypatch.setattr(mail, "email_document", failing)
    with pytest.raises(RuntimeError, match="1 document email"):
        mail.email_documents(tenant.id, job.args[1])
    _work(app)
    assert len(smtp) == 2                                          # the two others went
    monkeypatch.setattr(mail, "email_document", failing.__defaults__[0])
    assert mail.email_documents(tenant.id, job.args[1]) == {"duplicate": 2, "queued": 1}   # a retry sends the rest
