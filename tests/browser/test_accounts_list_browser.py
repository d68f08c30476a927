"""The account list in a real browser: htmx search, sort, pages, columns, bulk (CSRF on)."""
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def listed(world, make_account):
    accounts = [make_account(world.a, name=f"Harbour {n:02d}", company="Quay Ltd") for n in range(30)]
    make_account(world.a, name="Nord Law", company="Fjord Partners", email="it@nordlaw.example")
    return accounts


def rows(page):
    return page.locator("#account-results tbody tr")


def test_typing_a_search_swaps_only_the_results_and_updates_the_address(world, listed, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts")
    expect(page.locator(".list-summary")).to_contain_text("of 34")
    shot(page, "accounts-list")
    box = page.locator("#account-q")
    box.fill("fjord")
    expect(rows(page)).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/reseller/accounts\?q=fjord"))
    expect(box).to_be_focused()                       # the form was not replaced
    expect(rows(page).first).to_contain_text("Nord Law")
    shot(page, "accounts-list-search")


def test_sorting_paging_and_page_size_keep_each_other(world, listed, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts?q=harbour")
    expect(rows(page)).to_have_count(25)
    page.get_by_role("link", name="Name ▲").click()           # now descending
    expect(rows(page).first).to_contain_text("Harbour 29")
    expect(page).to_have_url(re.compile(r"sort=name&dir=desc"))
    page.get_by_role("link", name="Page 2").click()
    expect(rows(page)).to_have_count(5)
    expect(rows(page).first).to_contain_text("Harbour 04")
    page.select_option("#account-size", "10")                 # the form keeps the sort
    expect(rows(page)).to_have_count(10)
    expect(rows(page).first).to_contain_text("Harbour 29")
    expect(page).to_have_url(re.compile(r"sort=name.*dir=desc|dir=desc.*sort=name"))
    shot(page, "accounts-list-sorted")


def test_bulk_deactivate_in_the_browser_with_csrf(world, listed, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts?q=harbour&size=10")
    boxes = page.locator("#account-results input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.fill("#account-results input[name=reason]", "Closed for the winter")
    page.locator("#account-results input[name=confirm]").check()
    page.get_by_role("button", name="Deactivate selected").click()
    expect(page.locator("#account-results .flash.success")).to_contain_text("2 accounts deactivated.")
    expect(page.locator("#account-results .badge.disabled")).to_have_count(2)
    shot(page, "accounts-list-bulk")
    page.select_option("#account-status", "all_inactive")
    expect(rows(page)).to_have_count(2)


def test_hidden_columns_stay_hidden_on_the_next_visit(world, listed, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts")
    page.locator("summary", has_text="Columns").click()
    page.get_by_label("Company").uncheck()
    page.get_by_label("Email").check()
    page.get_by_role("button", name="Save columns").click()
    expect(page.locator("#account-results th", has_text="Email")).to_have_count(1)
    expect(page.locator("#account-results th", has_text="Company")).to_have_count(0)
    page.goto("/reseller/accounts?page=2")
    expect(page.locator("#account-results th", has_text="Company")).to_have_count(0)
    shot(page, "accounts-list-columns")


def test_the_admin_settings_page(world, page, browser_login, shot):
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/settings")
    page.fill("input[name=pin_length]", "3")
    page.click("main button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("Choose a length from 4 to 12.")
    shot(page, "admin-settings-error")
    page.fill("input[name=pin_length]", "8")
    page.click("main button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("PIN length 6 → 8")
    shot(page, "admin-settings")


def test_one_typed_letter_waits_for_the_next_but_enter_searches_it(world, listed, page, browser_login):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts")
    box = page.locator("#account-q")
    box.press_sequentially("n")
    page.wait_for_timeout(800)
    expect(page).to_have_url(re.compile(r"/reseller/accounts$"))
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=n"))
    expect(rows(page)).to_have_count(1)
