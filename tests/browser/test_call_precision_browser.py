"""Call charge precision (issue 14) in Chromium: the owner changes it on /reseller/settings,
and the transactions pages show sub-cent ledger amounts and balances as they are.
Screenshots under test-artifacts/screenshots/."""
from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from app.rating.cdr import CallRecord, store_rated_calls
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import give_plan, make_sheet


def test_the_owner_sets_the_precision_and_a_bad_value_is_refused_next_to_the_field(world, page, browser_login,
                                                                                   shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.click("nav >> text=Settings")
    page.wait_for_url("**/reseller/settings")
    assert page.locator("select[name=call_charge_places]").input_value() == "4"
    rows = page.locator("#precision-example tbody tr")
    assert [rows.nth(i).locator("td.num").inner_text() for i in range(3)] == ["$0.00", "$0.001", "$0.0006"]
    shot(page, "reseller-settings-precision")
    page.select_option("select[name=call_charge_places]", "2")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=call charge precision 4 → 2 decimal places")
    assert page.locator("select[name=call_charge_places]").input_value() == "2"
    shot(page, "reseller-settings-precision-saved")
    # a value the select cannot send, as a hand-made form would: a clear message, nothing saved
    page.evaluate("""() => { const o = document.createElement('option'); o.value = '7'; o.text = '7';
                             document.querySelector('select[name=call_charge_places]').add(o); }""")
    page.select_option("select[name=call_charge_places]", "7")
    page.click("main button[type=submit]")
    page.wait_for_selector("#call_charge_places-error")
    assert page.locator("#call_charge_places-error").inner_text() == "Choose 2, 3 or 4 decimal places."
    shot(page, "reseller-settings-precision-refused")
    db.session.rollback()
    with unscoped():
        assert db.session.execute(select(Tenant.call_charge_places).where(Tenant.id == world.a.id)).scalar_one() == 2


def test_transactions_show_sub_cent_call_charges_and_balances(world, page, browser_login, shot):
    account = world.account_a                                    # 10.00 of credit, reseller at 4 places
    give_plan(account, make_sheet(world.a, [("44", "GB", "0.10")], short_call=(6, "0.02")))
    with tenant_scope(world.a.id):
        store_rated_calls([CallRecord(account.id, "pbxb", f"b.{n}", "442071234567", datetime(2025, 6, 1, 9, n), d)
                           for n, d in enumerate([5, 6, 47])])
        db.session.commit()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{account.id}")
    table = page.locator("#transactions table tbody")
    # newest first: 47 s = 0.0783, 6 s = 0.0100, 5 s = 0.0083 + 0.02 short-call charge = 0.0283
    amounts = [table.locator("tr").nth(i).locator("td.num").nth(0).inner_text() for i in range(3)]
    balances = [table.locator("tr").nth(i).locator("td.num").nth(1).inner_text() for i in range(3)]
    assert amounts == ["-$0.0783", "-$0.01", "-$0.0283"]
    assert balances == ["$9.8834", "$9.9617", "$9.9717"]
    page.locator("#transactions").scroll_into_view_if_needed()
    shot(page, "reseller-account-transactions-sub-cent", full_page=False)
    browser_login(page, "portal", world.customer_a.email)
    page.goto("/portal/transactions")
    assert "balance now $9.8834" in page.locator("main").inner_text()
    assert page.locator("main table tbody tr").first.locator("td.num").nth(1).inner_text() == "$9.8834"
    shot(page, "portal-transactions-sub-cent")
