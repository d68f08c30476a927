"""The reseller's orders page in Chromium: a customer's request shows up with a count in the
navigation, the filter works with htmx, and "Mark processed" empties the pending list."""
from app.billing.orders import Order
from app.extensions import db
from tenants.scope import unscoped


def test_orders_arrive_in_one_list_and_are_processed_there(world, page, browser_login, shot):
    with unscoped():
        for account, what in ((world.account_a, "Number requested in France: Paris office"),
                              (world.account_a2, "Number requested in Germany"),
                              (world.account_a_sub, "Number requested in Spain")):
            db.session.add(Order(tenant_id=account.tenant_id, account_id=account.id, kind="number",
                                 description=what))
        db.session.commit()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/orders")
    assert page.locator("nav a[href='/reseller/orders'] .badge").inner_text() == "3"
    assert page.locator("#orders tbody tr").count() == 3
    shot(page, "reseller-orders")
    page.locator("#orders tbody tr", has_text="Germany").locator("button").click()
    page.wait_for_selector("text=marked as processed")
    assert page.locator("#orders tbody tr").count() == 2
    assert page.locator("nav a[href='/reseller/orders'] .badge").inner_text() == "2"
    page.select_option("select[name=status]", "processed")          # htmx swaps the list
    page.wait_for_function("document.querySelectorAll('#orders tbody tr').length === 1")
    assert "Germany" in page.locator("#orders tbody").inner_text()
    assert "status=processed" in page.url
    shot(page, "reseller-orders-processed")
