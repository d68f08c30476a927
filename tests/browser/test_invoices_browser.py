"""Bills in a real browser (issue 17 point 6, issue 18 points 2 and 7): a postpaid customer opens
Bills, views an invoice, pays it through the fake Checkout page and sees it paid once
localstripe's signed webhook has reached the app; the reseller's invoices page (totals per
currency, filter, void through the confirmation page) and its invoice settings with a logo.
Screenshots go to test-artifacts/screenshots/."""
import re
from datetime import date, datetime, timedelta

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tenants.scope import unscoped
from tests.conftest import STRIPE_TEST_WEBHOOK_SECRET
from tests.integration import invoice_docs_support as docs_support

pytestmark = pytest.mark.browser


@pytest.fixture
def postpaid_bills(world, make_account):
    from app.accounts.models import Account
    from app.invoicing.models import InvoiceSequence

    with unscoped():
        db.session.execute(db.update(Account).where(Account.id == world.account_a.id)
                           .values(billing_type="postpaid", company="Harbour Logistics Ltd", address="1 Quay Street",
                                   city="Portland", postcode="PO1 2AB", country="GB"))
        db.session.commit()
    docs_support.settings(world.a, logo=docs_support.LOGO_SVG, logo_type="image/svg+xml",
                          footer="Acme Telecom GmbH · IBAN DE89 3704 0044 0532 0130 00")
    today = date.today()
    bills = {
        "open": docs_support.invoice(world.account_a, number="INV-2026-000002", due_date=today + timedelta(days=11),
                                     lines=[("recurring", "Service plan Business (monthly)", None, "1", "40.00", "40.00"),
                                            ("calls", "Calls to United Kingdom", 212, "640.5", "0.0120", "7.6860")],
                                     taxes=[("VAT", "20", False)]),
        "paid": docs_support.invoice(world.account_a, number="INV-2026-000001", status="paid", amount_paid="122.84",
                                     period=(date(2026, 10, 1), date(2026, 11, 1)), issued_at=datetime(2026, 11, 1, 6),
                                     due_date=date(2026, 11, 15)),
    }
    eur = make_account(world.a, name="Café Europa", currency="EUR", billing_type="postpaid")
    bills["eur"] = docs_support.invoice(eur, number="INV-2026-000003", taxes=[], due_date=today - timedelta(days=2))
    with unscoped():
        db.session.add(InvoiceSequence(tenant_id=world.a.id, series="INV-2026-", last_number=3))
        db.session.commit()
    return bills


def test_a_customer_pays_a_bill_through_checkout_and_sees_it_paid(world, postpaid_bills, page, live_server, fake_stripe,
                                                                  browser_login, shot):
    fake_stripe.register_webhook(f"{live_server}/webhooks/stripe", STRIPE_TEST_WEBHOOK_SECRET)
    browser_login(page, "portal", world.customer_a.email)
    page.get_by_role("link", name="Bills").click()
    expect(page.locator("h2")).to_have_text("Bills")
    expect(page.locator("#unpaid-total")).to_have_text("$57.23 unpaid")
    # two invoices, and the receipt of the account's initial credit (from when it was prepaid)
    expect(page.locator("table.bills tbody tr")).to_have_count(3)
    expect(page.locator("table.bills")).to_contain_text("Receipt RCT-")
    shot(page, "portal-bills")
    # the invoice as a page, with its PDF
    page.get_by_role("link", name="INV-2026-000002").click()
    expect(page.locator("h1")).to_have_text("Invoice")
    expect(page.locator(".totals .grand")).to_contain_text("$57.23")
    shot(page, "portal-invoice-page")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    assert download.value.suggested_filename == "invoice-INV-2026-000002.pdf"
    page.get_by_role("link", name="← Bills").click()
    # pay it
    page.locator('tr[data-bill="invoice-%d"] button.pay-bill' % postpaid_bills["open"].id).click()
    expect(page).to_have_url(re.compile(re.escape(fake_stripe.checkout_base) + r"/pay/cs_test_"))
    expect(page.locator("#amount")).to_have_text("57.23 USD")
    shot(page, "fake-checkout-bill")
    page.click("#pay")
    expect(page).to_have_url(re.compile(r"/portal/payments/\d+$"))
    expect(page.locator("h2")).to_contain_text("for invoice INV-2026-000002")
    expect(page.locator("#payment-status")).to_contain_text("Payment received", timeout=10_000)
    expect(page.locator("#bill-status")).to_contain_text("is paid")
    shot(page, "portal-bill-payment-received")
    page.get_by_role("link", name="Bills").last.click()
    expect(page.locator("#unpaid-total")).to_have_text("Nothing unpaid.")
    row = page.locator('tr[data-bill="invoice-%d"]' % postpaid_bills["open"].id)
    expect(row.locator(".badge")).to_have_text("paid")
    expect(row.locator("button.pay-bill")).to_have_count(0)
    shot(page, "portal-bills-paid")


def test_the_reseller_filters_invoices_and_voids_one(world, postpaid_bills, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.get_by_role("link", name="Invoices").click()
    expect(page.locator("table.invoices tbody tr")).to_have_count(3)
    expect(page.locator('.currency-total[data-currency="USD"]')).to_contain_text("Outstanding $57.23")
    expect(page.locator('.currency-total[data-currency="EUR"]')).to_contain_text("€103.23")
    shot(page, "reseller-invoices")
    page.select_option("select[name=status]", "overdue")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.invoices tbody tr")).to_have_count(1)
    expect(page.locator("table.invoices")).to_contain_text("INV-2026-000003")
    shot(page, "reseller-invoices-overdue")
    page.select_option("select[name=status]", "")
    page.get_by_role("button", name="Filter").click()
    row = page.locator('tr[data-invoice="%d"]' % postpaid_bills["open"].id)
    row.get_by_role("link", name="Void").click()
    expect(page.locator("h2")).to_have_text("Void invoice INV-2026-000002?")
    page.click("#confirm-void")
    expect(page.locator("#reason-error")).to_contain_text("Say why")
    page.fill("#reason", "Billed to the wrong company")
    shot(page, "reseller-void-confirm")
    page.click("#confirm-void")
    expect(page.locator("h1")).to_have_text("Credit note")
    expect(page.locator(".notes")).to_contain_text("Credit note for invoice INV-2026-000002")
    shot(page, "reseller-credit-note")
    page.get_by_role("link", name="All invoices").click()
    expect(page.locator('tr[data-invoice="%d"] .badge' % postpaid_bills["open"].id)).to_have_text("void")
    expect(page.locator("table.invoices")).to_contain_text("INV-2026-000004")       # the credit note's number


def test_the_owner_sets_the_invoice_settings_and_previews_them(world, page, browser_login, shot, tmp_path):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/invoice-settings")
    page.fill("#legal_name", "Acme Telecom GmbH")
    page.fill("#address", "Hauptstraße 12\n10115 Berlin")
    page.fill("#tax_number", "DE123456789")
    page.fill("#number_prefix", "ACME-{year}-")
    page.fill("#payment_terms_days", "abc")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#payment_terms_days-error")).to_contain_text("from 0 to 365")
    page.fill("#payment_terms_days", "30")
    logo = tmp_path / "logo.svg"
    logo.write_bytes(docs_support.LOGO_SVG)
    page.set_input_files("#logo", str(logo))
    page.check("#include_rate_table")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_have_text("Invoice settings saved.")
    expect(page.locator("#logo-preview")).to_be_visible()
    shot(page, "reseller-invoice-settings")
    page.get_by_role("link", name="Preview a sample invoice").click()
    expect(page.locator(".number")).to_have_text(f"ACME-{date.today().year}-000001")
    expect(page.locator(".rate-table")).to_be_visible()
    shot(page, "reseller-invoice-preview")
