"""The Rates Manager in a real browser: upload a deck, watch the progress bar, see the result."""
import random
import re

import pytest
from playwright.sync_api import expect

from tests.integration.rating_support import fresh_index_cache, make_sheet

pytestmark = pytest.mark.browser
assert fresh_index_cache  # autouse fixture


@pytest.fixture
def jobs_in_process(app):
    """Jobs in a background thread of the server (the embedded default): the bar really moves."""
    saved = app.config["REDIS_URL"], app.config["JOBS_SYNCHRONOUS"]
    app.config["REDIS_URL"], app.config["JOBS_SYNCHRONOUS"] = None, False
    yield
    app.config["REDIS_URL"], app.config["JOBS_SYNCHRONOUS"] = saved


def deck(rows: int, bad: int = 0) -> bytes:
    rng = random.Random(5)
    lines = ["Dial code;Destination;Price per minute;Billing;Effective date"]
    seen = set()
    while len(lines) <= rows:
        prefix = str(rng.randint(2, 9)) + "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 7)))
        if prefix not in seen:
            seen.add(prefix)
            lines.append(f"{prefix};Destination {prefix};0,{rng.randint(100, 9999):04d};60/6;")
    for n in range(bad):
        lines.insert(3 + n * 2, f"0{n + 1}44;Bad;0,01;1/1;")
    return ("\n".join(lines) + "\n").encode()


def test_upload_a_deck_and_watch_the_progress_bar_until_done(world, page, browser_login, shot, jobs_in_process,
                                                               tmp_path):
    sheet_id = make_sheet(world.a, name="Carrier deck")
    path = tmp_path / "carrier-deck.csv"
    path.write_bytes(deck(100_000))
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/rates/{sheet_id}")
    page.get_by_text("Import a rate deck (CSV)").click()
    page.set_input_files("input[name=file]", str(path))
    shot(page, "rates-import-form")
    page.get_by_role("button", name="Upload and import").click()
    expect(page).to_have_url(re.compile(r"/reseller/rates/imports/rate-import-[0-9a-f]+$"))
    expect(page.locator("#import-progress progress")).to_be_visible()
    try:   # catch the bar part-way (the job may also finish first on a fast machine)
        page.wait_for_function("() => { const p = document.querySelector('#import-progress progress');"
                               " return p && p.value > 0 && p.value < 100; }", timeout=15_000, polling=50)
    except Exception:
        pass
    shot(page, "rates-import-progress")
    expect(page.locator("#import-progress .flash.success")).to_contain_text("Done: 100,000 rows imported",
                                                                            timeout=60_000)
    expect(page.locator("#import-progress progress")).to_have_attribute("value", "100")
    shot(page, "rates-import-done")
    page.get_by_role("button", name="Back to Carrier deck").click()
    expect(page.locator(".list-summary")).to_contain_text("of 100,000 rows")
    page.fill("#rate-q", "7")
    expect(page.locator(".list-summary")).to_contain_text("matching “7”")
    shot(page, "rates-sheet-rows")


def test_a_deck_with_bad_lines_lists_them_and_imports_nothing(world, page, browser_login, shot, jobs_in_process,
                                                             tmp_path):
    sheet_id = make_sheet(world.a, name="Carrier deck")
    path = tmp_path / "bad-deck.csv"
    path.write_bytes(deck(200, bad=3))
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/rates/{sheet_id}")
    page.get_by_text("Import a rate deck (CSV)").click()
    page.set_input_files("input[name=file]", str(path))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#import-progress .flash.error")).to_contain_text("3 bad lines: nothing imported")
    expect(page.locator(".import-errors tbody tr")).to_have_count(3)
    expect(page.locator(".import-errors tbody tr").first).to_contain_text("starts with 0")
    shot(page, "rates-import-rejected")


def test_the_margin_report_draws_daily_charges_and_cost(world, page, browser_login, shot):
    from datetime import datetime

    from sqlalchemy import select

    from app.extensions import db
    from app.rating.cdr import rate_calls
    from tenants.models import Tenant
    from tenants.scope import tenant_scope, unscoped
    from tests.integration.rating_support import add_call, give_plan

    wholesale = make_sheet(world.a, [("44", "GB", "0.30", "0", 60, 60), ("33", "FR", "0.20", "0", 60, 60)])
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == world.a_sub.id)).scalar_one().buy_rate_sheet_id = wholesale
        db.session.commit()
    give_plan(world.account_a_sub, make_sheet(world.a_sub, [("44", "GB", "1.20", "0", 60, 60),
                                                            ("33", "FR", "0.90", "0", 60, 60)]), [("GB", 0), ("FR", 0)])
    give_plan(world.account_a, make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)]), [("GB", 0)])
    rng = random.Random(3)
    ids = []
    for day in range(1, 29):
        for _ in range(rng.randint(0, 6)):
            who = rng.choice([world.account_a_sub, world.account_a_sub, world.account_a])
            number = rng.choice(["442071234567", "33142345678"]) if who is world.account_a_sub else "442071234567"
            ids.append((who.tenant_id, add_call(who, number, rng.randint(20, 600), datetime(2025, 5, day, 10))))
    for tenant_id in {t for t, _ in ids}:
        with tenant_scope(tenant_id, descendants=False):
            rate_calls([i for t, i in ids if t == tenant_id])
            db.session.commit()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/reports/margin?from=2025-05-01&to=2025-05-31")
    expect(page.locator("svg.chart rect.bar.sell").first).to_be_visible()
    expect(page.locator("svg.chart rect.bar.buy").first).to_be_visible()
    expect(page.locator("main table").first).to_contain_text("Reseller A North")
    shot(page, "reports-margin")
    page.goto(f"/reseller/reports/accounts/{world.account_a_sub.id}/per-minute?from=2025-05-01&to=2025-05-31")
    expect(page.locator("svg.chart")).to_be_visible()
    shot(page, "reports-per-minute")


def test_the_rates_page_lists_sheets_and_sets_a_sub_resellers_buy_sheet(world, page, browser_login, shot):
    make_sheet(world.a, [("44", "GB", "0.10"), ("33", "FR", "0.05")], name="Retail")
    make_sheet(world.a, [("44", "GB", "0.04")], name="Wholesale", short_call=(6, "0.01"))
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/rates")
    page.select_option(f"#t{world.a_sub.id}-rate_sheet_id", label="Wholesale (USD)")
    page.locator("#buy-sheets button").click()
    expect(page.locator(".flash.success")).to_contain_text("Reseller A North now buys at the sheet you chose")
    expect(page.locator(f"#t{world.a_sub.id}-rate_sheet_id")).to_have_value(
        page.locator(f"#t{world.a_sub.id}-rate_sheet_id option", has_text="Wholesale").get_attribute("value"))
    shot(page, "rates-sheets")
    make_sheet(world.a, [("44", "GB", "0.03")], name="Wholesale EUR", currency="EUR")
    page.goto("/reseller/rates")
    page.select_option(f"#t{world.a_sub.id}-rate_sheet_id", label="Wholesale EUR (EUR)")
    page.locator("#buy-sheets button").click()
    expect(page.locator(".flash.error")).to_contain_text("“Wholesale EUR” is in EUR, but this sub-reseller bills in USD")
    shot(page, "rates-buy-sheet-currency")
    page.get_by_role("link", name="Retail").click()
    page.get_by_text("Add a row or schedule a new price").click()
    page.fill("#prefix", "447")
    page.fill("#rate_per_minute", "-1")
    page.get_by_role("button", name="Add row").click()
    expect(page.locator("#rate_per_minute-error")).to_contain_text("cannot be negative")
    shot(page, "rates-row-error")
