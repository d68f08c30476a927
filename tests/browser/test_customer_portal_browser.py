"""The customer portal's account tab, transactions by date range and bundle minutes, in Chromium."""
from datetime import datetime, timezone

from sqlalchemy import update

from app import ledger
from app.accounts.models import Account
from app.billing.models import BundleUsage
from app.extensions import db
from app.ledger import LedgerEntry
from tenants.scope import unscoped
from tests.integration.rating_support import give_plan, make_sheet


def test_a_customer_reads_its_details_transactions_and_bundle(world, page, browser_login, shot):
    a = world.account_a
    sheet = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)])
    give_plan(a, sheet, [("GB", 200), ("FR", 0)])
    with unscoped():
        db.session.execute(update(Account).where(Account.id == a.id).values(
            timezone="Europe/Paris", company="Harbour Cafe Ltd", phone="+442079460018", address="1 Quay Street",
            city="Bristol", postcode="BS1 4DJ", country="GB"))
        for n, (amount, when) in enumerate((("25.00", datetime(2026, 11, 3, 9)), ("-0.42", datetime(2026, 11, 9, 23, 30)),
                                            ("-3.00", datetime(2026, 11, 30, 23, 15)))):
            ledger.post(a.id, amount, "adjustment", f"b-{n}", description=f"Entry {n + 1}")
            db.session.execute(update(LedgerEntry).where(LedgerEntry.idempotency_key == f"b-{n}").values(created_at=when))
        db.session.add(BundleUsage(tenant_id=a.tenant_id, account_id=a.id, country="GB",
                                   period_start=datetime.now(timezone.utc).date().replace(day=1), seconds_used=4_530))
        db.session.commit()
    browser_login(page, "portal", world.customer_a.email)
    page.click("nav >> text=Details")
    page.wait_for_selector("text=Where your phones register")
    assert "1 Quay Street, BS1 4DJ Bristol, GB" in page.inner_text("#contact")
    shot(page, "customer-account-tab")
    page.click("nav >> text=Transactions")
    page.fill("#range-from", "2026-11-01")
    page.fill("#range-to", "2026-11-30")
    page.click("main button[type=submit]")
    page.wait_for_url("**/portal/transactions?from=2026-11-01&to=2026-11-30")
    rows = page.locator("table tbody tr")
    assert rows.count() == 2                      # 30 Nov 23:15 UTC is 1 Dec in Paris
    assert rows.first.locator("td").first.inner_text() == "2026-11-10 00:30"
    shot(page, "customer-transactions-range")
    page.click("nav >> text=Service plan")
    assert "75 min 30 s" in page.inner_text("#bundle-minutes")     # used
    assert "124 min 30 s" in page.inner_text("#bundle-minutes")    # left
    shot(page, "customer-bundle-minutes")
