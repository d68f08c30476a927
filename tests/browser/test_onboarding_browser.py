"""A reseller onboards a customer in the browser (htmx, CSRF on), then logs in as it."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.accounts.models import Account
from app.extensions import db
from tenants.scope import unscoped
from tests.integration.onboarding_support import make_numbers, make_rate_sheet

pytestmark = pytest.mark.browser


def _step1(page, email="hanna@harbour.example", phone="020 7946 0018"):
    page.goto("/reseller/accounts/new")
    page.fill("input[name=name]", "Harbour Cafe")
    page.fill("input[name=email]", email)
    page.fill("input[name=first_name]", "Hanna")
    page.fill("input[name=last_name]", "Harbour")
    page.fill("input[name=phone]", phone)
    page.fill("input[name=company]", "Harbour Cafe Ltd")
    page.select_option("select[name=country]", "GB")
    page.get_by_role("button", name="Next: service plan").click()


def _accounts():
    with unscoped():
        return db.session.scalar(select(func.count()).select_from(Account))


def test_a_reseller_onboards_an_account_through_both_wizard_steps(world, page, browser_login, shot):
    make_rate_sheet(world.a, "Standard")
    make_numbers(world.a, 2)
    before = _accounts()
    browser_login(page, "reseller", world.owner_a.email)
    _step1(page)
    expect(page.locator("main hgroup")).to_contain_text("Step 2 of 2")
    shot(page, "wizard-step2")
    page.get_by_role("button", name="Back").click()          # Back keeps what was typed
    expect(page.locator("input[name=email]")).to_have_value("hanna@harbour.example")
    page.get_by_role("button", name="Next: service plan").click()
    page.fill("input[name=plan_name]", "Harbour Gold")
    page.fill("input[name=users]", "2")
    page.fill("input[name=cost_per_user]", "10.00")
    page.fill("input[name=initial_credit]", "100.00")
    page.locator("input[name=number_ids]").first.check()
    page.select_option("select[name=countries-0-country]", "GB")
    page.fill("input[name=countries-0-minutes]", "100")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".flash.success")).to_contain_text(re.compile(r"Account \d{10} created"))
    expect(page.locator("main")).to_contain_text("Harbour Cafe")
    shot(page, "account-page-after-onboarding")
    assert _accounts() == before + 1


def test_an_invalid_first_step_shows_messages_next_to_the_fields_and_writes_nothing(world, page, browser_login, shot):
    before = _accounts()
    browser_login(page, "reseller", world.owner_a.email)
    _step1(page, email="not-an-email", phone="12")
    expect(page.locator(".field-error").first).to_be_visible()
    expect(page.locator("main")).to_contain_text("Step 1")
    shot(page, "wizard-step1-invalid")
    assert _accounts() == before


def test_a_reseller_logs_in_as_the_customer_and_comes_back(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{world.account_a.id}")
    page.get_by_role("button", name="Log in as customer").click()
    expect(page).to_have_url(re.compile(r"/portal/"))
    expect(page.locator(".banner-impersonating")).to_contain_text("on their behalf")
    shot(page, "impersonating-customer")
    page.goto(f"/reseller/accounts/{world.account_a2.id}")     # nothing beyond that account
    expect(page.locator("main")).to_contain_text("Not allowed")
    page.goto("/portal/")
    page.get_by_role("button", name="Back to the reseller portal").click()
    expect(page).to_have_url(re.compile(r"/reseller/accounts/\d+"))
    shot(page, "impersonation-ended")
