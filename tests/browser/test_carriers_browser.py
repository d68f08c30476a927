"""Carriers, routes and the route lookup in a real browser (issue 19, point 2)."""
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.rating.models import Rate, RateSheet
from tenants.scope import unscoped


def _sheet(tenant, name, rate):
    with unscoped():
        sheet = RateSheet(tenant_id=tenant.id, name=name, currency="USD")
        db.session.add(sheet)
        db.session.flush()
        db.session.add(Rate(tenant_id=tenant.id, rate_sheet_id=sheet.id, prefix="44", country="GB",
                            rate_per_minute=Decimal(rate)))
        db.session.commit()


def _add_carrier(page, name, host, sheet=None, port="5060"):
    page.goto("/admin/carriers/new")
    page.fill("input[name=name]", name)
    page.fill("input[name=host]", host)
    page.fill("input[name=port]", port)
    if sheet:
        page.select_option("select[name=buy_rate_sheet_id]", label=sheet)
    page.click("main button[type=submit]")


def test_admin_sets_up_carriers_and_routes_and_looks_a_number_up(world, page, browser_login, shot):
    _sheet(world.platform, "Alpha buy", "0.0150")
    _sheet(world.platform, "Bravo buy", "0.0090")
    browser_login(page, "admin", world.admin.email)
    _add_carrier(page, "Alpha", "sip.alpha.example", "Alpha buy (USD)", port="99999")
    assert "Choose a port from 1 to 65535" in page.inner_text("#port-error")
    shot(page, "admin-carrier-form-error")
    page.fill("input[name=port]", "5060")
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/carriers")
    _add_carrier(page, "Bravo", "192.0.2.20", "Bravo buy (USD)")
    page.wait_for_url("**/admin/carriers")
    assert "192.0.2.20:5060" in page.inner_text("#carriers")
    shot(page, "admin-carriers")

    page.goto("/admin/routing/groups/new")
    page.fill("input[name=name]", "Main")
    page.check("input[name=is_default]")
    page.click("main button[type=submit]")
    page.click("text=Add routes")
    page.fill("textarea[name=prefixes]", "44 4420")
    page.select_option("#carrier_1", label="Alpha")
    page.select_option("#carrier_2", label="Alpha")
    page.click("main button[type=submit]")
    assert "Alpha is listed twice" in page.inner_text("#carriers-error")
    page.select_option("#carrier_2", label="Bravo")
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/routing")
    assert "1. Alpha → 2. Bravo" in page.inner_text("main")
    shot(page, "admin-routing")

    page.click("text=Look up a number")
    page.fill("#number", "442071234567")
    page.click("main button[type=submit]")        # htmx swaps #main and pushes the URL
    page.wait_for_selector("#lookup-result")
    result = page.inner_text("#lookup-result")
    assert "route 4420 in Main" in result
    assert result.index("Bravo") < result.index("Alpha")     # least cost: Bravo buys cheaper
    assert "number=442071234567" in page.url
    shot(page, "admin-route-lookup")


def test_admin_reads_the_carrier_margin(world, page, browser_login, shot):
    from datetime import datetime, timedelta

    from app.calls.models import Call
    from app.routing.models import Carrier

    _sheet(world.platform, "Wholesale buy", "0.0100")
    with unscoped():
        sheet_id = db.session.execute(select(RateSheet.id).where(RateSheet.name == "Wholesale buy")).scalar_one()
        carrier = Carrier(tenant_id=world.platform.id, name="Wholesale One", host="sip.one.example",
                          buy_rate_sheet_id=sheet_id)
        db.session.add(carrier)
        db.session.flush()
        when = datetime.utcnow() - timedelta(hours=2)
        for n, (account, country, cost, buy, carried) in enumerate([
                (world.account_a, "GB", "0.30", "0.10", "0.02"), (world.account_b, "GB", "0.20", "0.05", "0.01"),
                (world.account_a, "FR", "0.40", "0.20", None)]):
            db.session.add(Call(tenant_id=account.tenant_id, account_id=account.id, server="pbx1", uniqueid=f"b.{n}",
                                destination="442071234567", started_at=when, billsec=90, disposition="ANSWERED",
                                rated_at=when, country=country, cost=Decimal(cost), buy_cost=Decimal(buy),
                                carrier_id=carrier.id, carrier_cost=None if carried is None else Decimal(carried)))
        db.session.commit()
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/routing")
    page.click("text=Carrier margin")
    page.wait_for_selector("#carrier-margin")
    text = page.inner_text("#carrier-margin")
    assert "Wholesale One" in text and "$0.15" in text and "$0.12" in text
    page.fill("#start", "2030-01-02")
    page.fill("#end", "2030-01-01")
    page.click("main button[type=submit]")
    page.wait_for_selector("#end-error")
    assert "before the start date" in page.inner_text("#end-error")
    page.go_back()
    page.wait_for_selector("#carrier-margin >> text=Wholesale One")
    shot(page, "admin-carrier-margin")
