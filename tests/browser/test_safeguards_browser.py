"""Safeguards in the browser: suspend asks why on a confirmation page, a large adjustment is
confirmed a second time, the reseller sets its limit; balances held per currency."""
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_suspend_asks_why_then_keeps_the_reason_in_the_history(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{world.account_a.id}")
    page.locator("#actions button[value=suspend]").click()
    expect(page.locator("h2")).to_contain_text("Suspend")
    page.locator("#confirm-status button[type=submit]").click()       # no reason yet
    expect(page.locator("#reason-error")).to_contain_text("Say why")
    shot(page, "reseller-suspend-confirm-no-reason")
    page.fill("input[name=reason]", "Invoice of November unpaid")
    shot(page, "reseller-suspend-confirm")
    page.locator("#confirm-status button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("The account is now suspended")
    expect(page.locator("#history")).to_contain_text("reason: Invoice of November unpaid")
    page.locator("#history").scroll_into_view_if_needed()
    shot(page, "reseller-account-history-reason", full_page=False)


def test_delete_shows_its_confirmation_page(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{world.account_a.id}")
    page.locator("#more summary").click()
    page.locator("#more button.contrast").click()
    expect(page.locator("#confirm-status")).to_contain_text("closes the account for good")
    shot(page, "reseller-delete-confirm")


def test_a_large_credit_is_confirmed_a_second_time(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/settings")
    page.fill("input[name=adjustment_confirm_limit]", "500")
    page.locator("#adjustment-limit button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("Settings saved")
    shot(page, "reseller-settings")

    page.goto(f"/reseller/accounts/{world.account_a.id}")
    page.select_option("#balance select[name=action]", "credit")
    page.fill("#balance input[name=amount]", "750")
    page.fill("#balance input[name=reason]", "Prepaid annual bundle")
    page.locator("#balance button[type=submit]").click()
    expect(page.locator("#confirm-large")).to_contain_text("more than your limit of $500.00")
    shot(page, "reseller-adjustment-confirm")
    form = page.locator("#confirm-large form")
    fields = form.evaluate("f => Object.fromEntries(new FormData(f))")
    action = form.get_attribute("action")
    page.locator("#confirm-large button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("Balance is now $760.00")
    # The same confirmation sent again (a double click, a resend): nothing more is posted.
    assert page.request.post(action, form=fields, max_redirects=0).status == 303
    page.goto(f"/reseller/accounts/{world.account_a.id}")
    expect(page.locator(".flash.info")).to_contain_text("already recorded")
    expect(page.locator("#info")).to_contain_text("$760.00")


def test_the_dashboard_holds_balances_per_currency(world, make_account, page, browser_login, shot):
    make_account(world.a, credit="42.50", currency="EUR")
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/")
    expect(page.locator("main")).to_contain_text("Balances held in EUR")
    expect(page.locator("main")).to_contain_text("Balances held in USD")
    shot(page, "reseller-dashboard-currencies")


def test_bulk_deactivate_asks_for_the_tick_and_a_reason(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts")
    page.locator(f"input[name=ids][value='{world.account_a.id}']").check()
    page.locator("button[value=deactivate]").click()
    expect(page.locator(".flash.error")).to_contain_text("Tick “I confirm”")
    page.locator(f"input[name=ids][value='{world.account_a.id}']").check()
    page.fill("input[name=reason]", "Season closed")
    page.locator("input[name=confirm]").check()
    expect(page.locator("input[name=confirm]")).to_be_checked()
    page.locator(".bulk-reason").scroll_into_view_if_needed()
    shot(page, "reseller-accounts-bulk-reason")
    page.locator("button[value=deactivate]").click()
    expect(page.locator(".flash.success")).to_contain_text("1 account deactivated.")


def test_the_margin_report_draws_one_chart_per_currency(world, make_account, page, browser_login, shot):
    from datetime import datetime

    from app.extensions import db
    from app.rating.cdr import rate_calls
    from tenants.scope import tenant_scope
    from tests.integration.rating_support import add_call, give_plan, make_sheet

    usd = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)], name="USD retail")
    eur = make_sheet(world.a, [("44", "GB", "0.50", "0", 60, 60)], name="EUR retail", currency="EUR")
    euro_account = make_account(world.a, credit="100", currency="EUR")
    give_plan(world.account_a, usd)
    give_plan(euro_account, eur)
    ids = [add_call(world.account_a, "442071234567", 60, datetime(2025, 5, 3, 12)),
           add_call(euro_account, "442071234567", 120, datetime(2025, 5, 4, 13))]
    with tenant_scope(world.a.id, descendants=False):
        rate_calls(ids)
        db.session.commit()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/reports/margin?from=2025-05-01&to=2025-05-10")
    expect(page.locator("svg.chart")).to_have_count(2)
    shot(page, "reseller-margin-per-currency")
