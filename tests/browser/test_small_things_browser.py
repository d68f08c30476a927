"""The admin's numbers page (rows aligned, whatever each row's action) and the favicon, in
Chromium; screenshots under test-artifacts/screenshots/."""
from app.extensions import db
from app.numbers.operations import allocate, import_numbers
from tenants.scope import unscoped


def test_the_admin_numbers_page_aligns_its_rows(world, page, browser_login, shot):
    with unscoped():
        import_numbers("+442079460001,GB,1.00,2.00\n+442079460002,GB,1.00,2.00\n+33142685301,FR,0.50,1.50\n")
        db.session.commit()
        from sqlalchemy import select
        from app.numbers.models import Number
        first = db.session.execute(select(Number).order_by(Number.id)).scalars().first()
        allocate([first.id], world.a)
        db.session.commit()
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/numbers")
    rows = page.locator("table tbody tr")
    assert rows.count() == 3
    # every cell of a row shares one middle line: a row with a button is not taller inside
    for i in range(3):
        boxes = [rows.nth(i).locator("td").nth(k).bounding_box() for k in (1, 2, 3)]
        middles = {round(b["y"] + b["height"] / 2) for b in boxes}
        assert max(middles) - min(middles) <= 2, middles
    shot(page, "admin-numbers-aligned")
    heights = {round(rows.nth(i).bounding_box()["height"]) for i in range(3)}
    assert max(heights) - min(heights) <= 4, heights          # the "Take back" row is not taller
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon.endswith("favicon.svg")
    shot(page, "admin-numbers-aligned")


def test_the_admin_sets_the_sip_server_and_the_audit_log_names_it(world, page, browser_login, shot):
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/settings")
    page.fill("input[name=sip_server]", "sip.acme-voice.net")
    page.fill("input[name=sip_port]", "5061")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=SIP server sip.ringledger.example → sip.acme-voice.net")
    shot(page, "admin-settings-sip-server")
    page.goto("/admin/audit")
    assert page.locator("table tbody tr").first.locator("td").nth(3).inner_text() == "settings.updated"
    page.goto("/admin/audit?action=reseller.")
    assert "Reseller Reseller A" in page.locator("table tbody").inner_text()
    shot(page, "admin-audit-names")
