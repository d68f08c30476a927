"""The calls browser in a real browser: htmx filters and pages, ASR/ACD after the list, an
unrated call's error and its re-rate, re-rate-all with progress; the wizard's coverage warning."""
import re
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect
from workers.runner import SimpleWorker

from app import jobs
from app.billing.models import PlanCountry
from app.extensions import db
from app.rating.cdr import rate_calls
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture
pytestmark = pytest.mark.browser

DAY = datetime(2025, 5, 10, 9, 0, 0)
RANGE = "from=2025-05-01&to=2025-05-31"


@pytest.fixture
def calls(world):
    sheet = make_sheet(world.a, [("44", "GB", "0.60"), ("33", "FR", "1.20")], name="Europe")
    plan = give_plan(world.account_a, sheet, countries=(("GB", 0),))
    give_plan(world.account_a_sub, make_sheet(world.a_sub, [("44", "GB", "0.50")], name="North"),
              countries=(("GB", 0),))
    ids = []
    for i in range(30):
        answered = i % 3 != 0
        ids.append(add_call(world.account_a, f"44207946{i:04d}", 20 + 7 * i if answered else 0,
                            DAY + timedelta(minutes=17 * i), disposition="ANSWERED" if answered else "BUSY"))
    fr = add_call(world.account_a, "33142687000", 95, DAY + timedelta(hours=12))
    sub = add_call(world.account_a_sub, "4420794600", 40, DAY + timedelta(hours=13))
    with tenant_scope(world.a.id):
        rate_calls(ids + [fr, sub])
        db.session.commit()
    return {"sheet": sheet, "plan": plan, "fr": fr, "ids": ids}


def open_fr(world, plan_id):
    with unscoped():
        db.session.add(PlanCountry(tenant_id=world.a.id, account_id=world.account_a.id, plan_id=plan_id, country="FR",
                                   minutes=0))
        db.session.commit()


def rows(page):
    return page.locator("#call-results tbody tr")


def test_filters_swap_the_results_and_the_figures_follow(world, calls, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/calls?{RANGE}")
    expect(rows(page)).to_have_count(32)
    expect(page.locator('[data-figure="asr"]')).to_have_text("68.8 %")       # 22 answered of 32
    expect(rows(page).first).to_contain_text("North")                          # the sub-reseller's, newest
    error_row = page.locator(f'tr[data-call-id="{calls["fr"]}"]')
    expect(error_row).to_contain_text("FR (prefix 33) is not opened by the plan")
    shot(page, "calls-browser")
    page.select_option("#calls-disposition", "BUSY")
    expect(rows(page)).to_have_count(10)
    expect(page).to_have_url(re.compile(r"disposition=BUSY"))
    expect(page.locator('[data-figure="asr"]')).to_have_text("0.0 %")
    page.select_option("#calls-disposition", "")
    expect(rows(page)).to_have_count(32)                 # swapped in (the form too) before typing
    page.fill("#calls-to", "2025-04-01")
    page.get_by_role("button", name="Show calls").click()
    expect(page.locator("#calls-to-error")).to_have_text("The end date is before the start date.")
    expect(rows(page)).to_have_count(0)
    shot(page, "calls-browser-bad-range")


def test_keyset_pages_older_and_newer(world, calls, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/calls?{RANGE}&size=25")
    expect(rows(page)).to_have_count(25)
    first = rows(page).first.get_attribute("data-call-id")
    page.get_by_role("link", name="Older ›").click()
    expect(rows(page)).to_have_count(7)
    expect(page).to_have_url(re.compile(r"older=\d{8}T\d{12}-\d+"))
    shot(page, "calls-browser-older")
    page.get_by_role("link", name="‹ Newer").click()
    expect(rows(page)).to_have_count(25)
    expect(rows(page).first).to_have_attribute("data-call-id", first)


def test_re_rate_one_call_after_opening_its_country(world, calls, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/calls?{RANGE}&rating=error")
    expect(rows(page)).to_have_count(1)
    open_fr(world, calls["plan"])
    rows(page).first.get_by_role("button", name="Re-rate").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Call {calls['fr']} rated: 1.9000 USD charged.")
    expect(rows(page)).to_have_count(0)                                      # the filter kept: no error left
    shot(page, "calls-browser-rerated")


def test_re_rate_all_shows_progress_then_the_outcome(app, world, calls, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    open_fr(world, calls["plan"])
    page.goto(f"/reseller/calls?{RANGE}")
    page.get_by_role("button", name=re.compile(r"Re-rate 1 unrated call of this filter")).click()
    expect(page).to_have_url(re.compile(r"/reseller/calls/reratings/\d+$"))
    expect(page.locator("#rerating-progress")).to_contain_text("Waiting for a worker")
    q = jobs.queue(app)
    SimpleWorker([q], connection=q.connection).work(burst=True)
    expect(page.locator("#rerating-progress .flash.success")).to_contain_text(
        "Done: 1 call rated, 1 charged; 0 still with a rating error.")
    shot(page, "calls-rerating-done")


def test_the_admin_sees_every_reseller(world, calls, make_account, page, browser_login, shot):
    add_call(world.account_b, "4930123456", 61, DAY + timedelta(hours=14))
    browser_login(page, "admin", world.admin.email)
    page.goto(f"/admin/calls?{RANGE}")
    expect(rows(page)).to_have_count(33)
    expect(rows(page).first).to_contain_text("Reseller B")
    page.select_option("#calls-reseller", str(world.b.id))
    expect(rows(page)).to_have_count(1)
    expect(page.locator('[data-figure="attempts"]')).to_have_text("1")
    shot(page, "calls-browser-admin")


def test_the_wizard_warns_when_an_opened_country_has_no_prefix(world, calls, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts/new")
    for name, value in (("name", "Quay Bakery"), ("email", "hello@quay.example"), ("first_name", "Quinn"),
                        ("last_name", "Quay"), ("phone", "020 7946 0100")):
        page.fill(f"input[name={name}]", value)
    page.select_option("select[name=country]", "GB")
    page.get_by_role("button", name="Next: service plan").click()
    expect(page.locator("main hgroup")).to_contain_text("Step 2 of 2")
    page.fill("input[name=plan_name]", "Quay plan")
    page.select_option("#rate_sheet_id", str(calls["sheet"]))
    page.select_option("select[name='countries-0-country']", "GB")
    expect(page.locator("#coverage-warning .flash")).to_have_count(0)
    page.select_option("select[name='countries-1-country']", "DE")
    expect(page.locator("#coverage-warning .flash.warning")).to_contain_text(
        "Rate sheet “Europe” has no prefix for Germany (DE).")
    page.locator("#coverage-warning").scroll_into_view_if_needed()
    shot(page, "wizard-coverage-warning", full_page=False)
    page.select_option("select[name='countries-1-country']", "")       # taken back: the warning goes
    expect(page.locator("#coverage-warning .flash")).to_have_count(0)
    page.select_option("select[name='countries-1-country']", "DE")
    expect(page.locator("#coverage-warning .flash.warning")).to_contain_text("Germany (DE)")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".flash.success")).to_contain_text("created")
    expect(page.locator(".flash.warning")).to_contain_text("Germany (DE)")
