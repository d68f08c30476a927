"""More actions from the accounts list in Chromium: select two accounts, choose "Reset the
balance", confirm on the next page with an amount and a reason, land back on the list."""
from playwright.sync_api import expect


def test_reset_two_balances_from_the_list(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts")
    for a in (world.account_a, world.account_a2):
        page.check(f"input[name=ids][value='{a.id}']")
    page.select_option("select[name=list_action]", "reset")
    page.click("text=Continue…")
    expect(page.locator("h2")).to_have_text("Reset the balance")
    page.fill("#amount", "3")
    page.fill("#reason", "Monthly promo credit")
    page.check("input[name=confirm]")
    shot(page, "reseller-list-action-confirm")
    page.click("#list-action button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("Reset the balance: 2 accounts done.")
    expect(page.locator("table.account-list")).to_contain_text("$3.00")
    shot(page, "reseller-list-action-done")
