"""Each portal's login in a real browser, with a screenshot of where it lands."""
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("portal,who,landing", [
    ("admin", "admin", "Platform"),
    ("reseller", "owner_a", "Reseller A"),
    ("portal", "customer_a", "Account 1"),
])
def test_each_portal_logs_in_and_shows_its_dashboard(world, page, browser_login, shot, portal, who, landing):
    user = getattr(world, who)
    page.goto(f"/{portal}/login")
    shot(page, f"login-{portal}")
    browser_login(page, portal, user.email)
    expect(page).to_have_url(re.compile(f"/{portal}/$"))
    expect(page.locator("main h2").first).to_contain_text(landing)
    shot(page, f"dashboard-{portal}")


def test_a_wrong_password_shows_the_message_next_to_the_field(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email, "wrong-password")
    expect(page.locator(".field-error")).to_contain_text("Email or password is not correct.")
    shot(page, "login-wrong-password")


def test_the_admin_creates_a_reseller_in_the_browser(world, page, browser_login, shot):
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/resellers")
    shot(page, "admin-resellers")
    page.get_by_role("button", name="New reseller").click()
    page.fill("input[name=name]", "Cobalt Calls")
    page.fill("input[name=slug]", "cobalt")
    page.fill("input[name=email]", "sales@cobalt.example")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    shot(page, "admin-reseller-created")
    expect(page.locator(".flash.success")).to_contain_text("Reseller Cobalt Calls created")
    shot(page, "admin-reseller-created")
