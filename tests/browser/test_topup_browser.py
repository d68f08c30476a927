"""A customer tops up in a real browser: the portal's top-up page, the fake Checkout page
(localstripe + Checkout Sessions), back to the payment page that waits, then turns to
"Payment received" once localstripe's signed webhook has reached the app and credited it.
Then the reseller's payment list and settings."""
import re

import pytest
from playwright.sync_api import expect

from tests.conftest import STRIPE_TEST_WEBHOOK_SECRET

pytestmark = pytest.mark.browser


def test_a_customer_tops_up_through_checkout_and_sees_the_balance_rise(world, page, live_server, fake_stripe,
                                                                       browser_login, shot):
    fake_stripe.register_webhook(f"{live_server}/webhooks/stripe", STRIPE_TEST_WEBHOOK_SECRET)
    browser_login(page, "portal", world.customer_a.email)
    expect(page.locator(".stats")).to_contain_text("$10.00")
    page.locator("a.topup-link").click()
    expect(page.locator("h2")).to_have_text("Top up")
    page.fill("#amount", "3")
    page.click("#pay")
    expect(page.locator("#amount-error")).to_have_text("The smallest top-up is $5.00.")
    shot(page, "portal-topup-refused")
    page.fill("#amount", "")
    page.get_by_role("button", name="$25.00").click()
    # The fake Checkout page (another host, as checkout.stripe.com is)
    expect(page).to_have_url(re.compile(re.escape(fake_stripe.checkout_base) + r"/pay/cs_test_"))
    expect(page.locator("#amount")).to_have_text("25.00 USD")
    shot(page, "fake-checkout")
    page.click("#pay")
    # Back in the portal before the webhook (localstripe delivers it 1 s later): waiting.
    expect(page).to_have_url(re.compile(r"/portal/payments/\d+$"))
    expect(page.locator("#payment-status")).to_contain_text("Waiting for the card processor")
    shot(page, "portal-payment-waiting")
    expect(page.locator("#payment-status")).to_contain_text("Payment received", timeout=10_000)
    expect(page.locator("#balance")).to_have_text("$35.00")
    shot(page, "portal-payment-received")
    page.get_by_role("link", name="Payment history").click()
    expect(page.locator("table.payments")).to_contain_text("succeeded")
    shot(page, "portal-payments")
    page.get_by_role("link", name="Account").first.click()
    expect(page.locator(".stats")).to_contain_text("$35.00")


def test_the_reseller_sees_the_payments_and_sets_its_limits(world, page, fake_stripe, browser_login, shot):
    from app.extensions import db
    from app.payments.checkout import pending_payment
    from tenants.scope import unscoped
    from decimal import Decimal
    from app.payments.models import Payment

    with unscoped():
        for account, ref, status in ((world.account_a, "cs_browser_1", "succeeded"),
                                     (world.account_a2, "cs_browser_2", "failed")):
            p = pending_payment(account, ref, Decimal("25.00"), "USD")
            p.status = status
            if status == "failed":
                p.failure_message = "Your card was declined."
        db.session.commit()
        assert db.session.query(Payment).count() == 2
    browser_login(page, "reseller", world.owner_a.email)
    page.get_by_role("link", name="Payments").click()
    expect(page.locator("table.payments tbody tr")).to_have_count(2)
    page.select_option("select[name=status]", "failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.payments tbody tr")).to_have_count(1)
    expect(page.locator("table.payments")).to_contain_text("declined")
    shot(page, "reseller-payments-failed")
    page.goto("/reseller/payments/settings")
    page.fill("input[name=topup_min]", "20")
    page.fill("input[name=topup_max]", "10")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("cannot be below the smallest")
    page.fill("input[name=topup_max]", "300")
    page.fill("input[name=presets]", "20, 50, 100")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_have_text("Payment settings saved.")
    expect(page.locator("input[name=presets]")).to_have_value("20.00, 50.00, 100.00")
    shot(page, "reseller-payment-settings")


def test_a_prepaid_customer_with_taxes_is_told_what_a_top_up_credits(world, page, fake_stripe, browser_login, shot):
    from tests.integration.invoicing_support import give_taxes, make_tax

    give_taxes(world.a, world.account_a.id, [make_tax(world.a, "VAT 25%", "25")])
    browser_login(page, "portal", world.customer_a.email)
    page.goto("/portal/topup")
    note = page.get_by_test_id("topup-tax-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Amounts include VAT 25%: a top-up of $10.00 credits $8.00 to your balance")
    shot(page, "portal-topup-tax-note")
