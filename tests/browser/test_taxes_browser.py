"""The taxes page and an account's taxes, in chromium: add with htmx, a refused rate shown next to
its field, and the account's edit form picking taxes and an exemption."""
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_owner_manages_taxes_and_an_account_picks_them(world, page, browser_login, shot):
    from tests.integration.onboarding_support import onboard_account

    account_id = onboard_account(world.a, name="Quay Dental", email="admin@quay.example", plan_name="Quay plan",
                                 users=1, cost_per_user="1.00", initial_credit="10.00")
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/taxes")
    form = page.locator("#tax-new")
    form.locator("input[name=name]").fill("VAT 20%")
    form.locator("input[name=rate]").fill("20")
    form.get_by_role("button", name="Add tax").click()
    expect(page.locator("#taxes .flash.success")).to_contain_text("Tax “VAT 20%” added (20%).")
    form = page.locator("#tax-new")
    form.locator("input[name=name]").fill("Levy")
    form.locator("input[name=rate]").fill("1.12345")
    form.get_by_text("Compound: on the subtotal").click()
    form.get_by_role("button", name="Add tax").click()
    expect(page.locator("#new-rate-error")).to_have_text("Use at most 4 decimal places.")
    expect(page.locator("#new-rate")).to_have_attribute("aria-invalid", "true")
    shot(page, "reseller-taxes-refused", full_page=False)
    page.locator("#new-rate").fill("1.5")
    page.locator("#tax-new").get_by_role("button", name="Add tax").click()
    expect(page.locator("#taxes .flash.success")).to_contain_text("Tax “Levy” added (1.5%).")
    expect(page.locator("[data-testid=taxes-table] tbody tr")).to_have_count(2)
    shot(page, "reseller-taxes", full_page=True)

    page.goto(f"/reseller/accounts/{account_id}")
    taxes = page.locator("#account-taxes")
    taxes.get_by_label("VAT 20% · 20%").check()
    taxes.get_by_label("Levy · 1.5% compound").check()
    taxes.get_by_text("Tax exempt").click()
    page.get_by_role("button", name="Save account").click()
    expect(page.locator("#tax_exempt_reason-error")).to_contain_text("Say why the account is tax exempt")
    page.locator("#tax_exempt_reason").fill("Reverse charge")
    page.get_by_role("button", name="Save account").click()
    expect(page.locator(".flash.success")).to_contain_text("Account saved.")
    taxes = page.locator("#account-taxes")
    expect(taxes.get_by_label("VAT 20% · 20%")).to_be_checked()
    expect(page.locator("#tax_exempt_reason")).to_have_value("Reverse charge")
    taxes.scroll_into_view_if_needed()
    shot(page, "reseller-account-taxes", full_page=False)
