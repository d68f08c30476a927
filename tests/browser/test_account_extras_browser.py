"""Extras on the account page (add, refuse, end) and owed charges in both portals, in chromium."""
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tenants.scope import unscoped

pytestmark = pytest.mark.browser


def test_the_reseller_adds_refuses_and_ends_extras(world, page, browser_login, shot):
    from app.billing.schedule import local_date

    today = local_date("UTC")
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{world.account_a.id}")
    section = page.locator("#extras")
    expect(section.locator("button[type=submit]", has_text="Add extra")).to_be_visible()   # loaded by htmx
    section.locator("input[name=description]").fill("Monthly support")
    section.locator("input[name=amount]").fill("4.50")
    section.locator("select[name=period]").select_option("monthly")
    section.locator("input[name=start_date]").fill(today.isoformat())
    section.get_by_role("button", name="Add extra").click()
    expect(page.locator(".flash.success")).to_contain_text("Extra “Monthly support” added")
    expect(page.locator("#extras table")).to_contain_text("Monthly support")

    section = page.locator("#extras")
    section.locator("input[name=description]").fill("Backup")
    section.locator("input[name=amount]").fill("2,50")
    section.locator("input[name=start_date]").fill(today.isoformat())
    section.locator("#end_date").fill((today - timedelta(days=3)).isoformat())
    section.get_by_role("button", name="Add extra").click()
    expect(page.locator("#extras .field-error").first).to_be_visible()
    expect(page.locator("#extras")).to_contain_text("use a dot for decimals")
    shot(page, "reseller-account-extras-refused", full_page=False)

    page.goto(f"/reseller/accounts/{world.account_a.id}")
    row = page.locator("#extras tbody tr", has_text="Monthly support")
    row.locator("input[name=end_date]").fill((today + timedelta(days=90)).isoformat())
    row.get_by_role("button", name="End").click()
    expect(page.locator(".flash.success")).to_contain_text("ends after")
    expect(page.locator("#extras table")).to_contain_text((today + timedelta(days=90)).isoformat())
    page.locator("#extras table").scroll_into_view_if_needed()
    shot(page, "reseller-account-extras", full_page=False)


def test_owed_charges_show_on_the_account_page_and_in_the_portal(world, page, browser_login, shot):
    from app.accounts.models import Account
    from app.billing.cycle import REASON_UNPAID, RecurringCharge
    from sqlalchemy import select

    a = world.account_a.id
    with unscoped():
        for i, (desc, amount) in enumerate((("3 users × $5.00, 2027-01", "15.00"),
                                            ("Number +44 20 7946 0001 monthly, 2027-01", "2.50"))):
            db.session.add(RecurringCharge(tenant_id=world.a.id, account_id=a, kind="users" if i == 0 else "number",
                                           item=i, period="2027-01", amount=Decimal(amount), description=desc,
                                           ledger_key=f"k{i}", status="owed"))
        acct = db.session.execute(select(Account).where(Account.id == a)).scalar_one()
        acct.status, acct.status_reason = "suspended", REASON_UNPAID
        db.session.commit()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{a}")
    expect(page.get_by_test_id("status-reason")).to_contain_text("unpaid recurring charges")
    owed = page.locator("#extras").get_by_test_id("owed-charges")
    expect(owed).to_contain_text("3 users × $5.00, 2027-01")
    owed.scroll_into_view_if_needed()
    shot(page, "reseller-account-owed", full_page=False)

    page.context.clear_cookies()
    browser_login(page, "portal", world.customer_a.email)
    expect(page.get_by_test_id("owed-charges")).to_contain_text("$2.50")
    shot(page, "portal-owed-charges")
