"""Owner, agent and contact on the account page, customer groups and the commission report."""
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_reseller_sets_agent_group_and_contact_then_reads_the_commission(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/groups")
    page.fill("input[name=name]", "Hotels")
    page.click("main button[type=submit]")
    expect(page.locator("table")).to_contain_text("Hotels")
    shot(page, "reseller-groups")

    page.goto(f"/reseller/accounts/{world.account_a.id}")
    section = page.locator("#profile")
    expect(section.get_by_test_id("owner-reseller")).to_have_text("Reseller A")   # loaded by htmx
    section.locator("select[name=agent_id]").select_option(str(world.staff_a.id))
    section.locator("input[name=agent_commission_rate]").fill("7.5")
    section.locator("select[name=group_id]").select_option(label="Hotels")
    section.locator("input[name=website]").fill("https://hotel.example")
    section.locator("input[name=low_balance_email]").fill("accounts@hotel.example")
    section.locator("select[name=report_schedule]").select_option("weekly")
    section.locator("input[name=report_to_customer]").check()
    section.locator("button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("Owner, agent and contact details saved")
    expect(page.locator("#profile input[name=website]")).to_have_value("https://hotel.example")
    expect(page.locator("#profile select[name=report_schedule]")).to_have_value("weekly")
    expect(page.locator("#profile input[name=report_to_customer]")).to_be_checked()
    page.locator("#profile").scroll_into_view_if_needed()
    shot(page, "reseller-account-profile", full_page=False)

    page.locator("#profile").get_by_text("Commission report of this agent").click()
    expect(page.locator("table")).to_contain_text("7.5 %")
    shot(page, "reseller-commission")

    page.goto("/reseller/accounts")
    page.select_option("select[name=group]", label="Hotels")
    expect(page.locator("main")).to_contain_text(world.account_a.account_number)
    expect(page.locator("main")).not_to_contain_text(world.account_a2.account_number)
    shot(page, "reseller-accounts-by-group")
