"""New logins in a real browser: the admins page, and a customer adding a portal login with
permissions, then that login's narrower portal."""
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_admin_adds_a_sub_admin(world, page, browser_login, shot):
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/admins")
    page.get_by_text("Add an admin or sub-admin").click()
    page.fill("input[name=name]", "Sue Sub")
    page.fill("input[name=email]", "sue@platform.example")
    page.select_option("select[name=role]", "platform_subadmin")
    page.fill("input[name=password]", "long-enough-1")
    page.click("main button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("sue@platform.example added")
    expect(page.locator("table")).to_contain_text("Sub-admin")
    shot(page, "admin-admins")


def test_a_customer_adds_a_portal_login_that_sees_only_its_pages(world, page, browser_login, shot):
    browser_login(page, "portal", world.customer_a.email)
    page.goto("/portal/logins")
    page.get_by_text("Add a portal login").click()
    page.fill("input[name=name]", "Bea Books")
    page.fill("input[name=email]", "bea@customer.example")
    page.fill("input[name=password]", "long-enough-1")
    page.locator("details input[value=transactions]").check()
    page.click("details button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("bea@customer.example added")
    shot(page, "portal-logins")
    page.click("form[action$='/logout'] button")
    browser_login(page, "portal", "bea@customer.example", "long-enough-1")
    nav = page.locator("nav")
    expect(nav).to_contain_text("Transactions")
    expect(nav).not_to_contain_text("Per minute")
    expect(nav).not_to_contain_text("Logins")
    shot(page, "portal-limited-login")
