"""Platform admin pages: carriers, route groups and routes, the route lookup, and the buy sheet
the platform assigns a top-level reseller (issue 19, point 2)."""
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.rating.models import Rate, RateSheet
from app.routing.models import Carrier, Route, RouteCarrier, RouteGroup
from tenants.models import Tenant
from tenants.scope import unscoped


def _sheet(tenant, name, rates, currency="USD"):
    with unscoped():
        sheet = RateSheet(tenant_id=tenant.id, name=name, currency=currency)
        db.session.add(sheet)
        db.session.flush()
        for prefix, rate in rates:
            db.session.add(Rate(tenant_id=tenant.id, rate_sheet_id=sheet.id, prefix=prefix, country="GB",
                                rate_per_minute=Decimal(rate)))
        db.session.commit()
        return sheet.id


CARRIER = dict(name="Wholesale One", host="sip.one.example", port="5060", username="", secret="",
               strip_digits="0", add_prefix="", buy_rate_sheet_id="", enabled="y")


def _carriers():
    db.session.expire_all()
    with unscoped():
        return {c.name: c for c in db.session.execute(select(Carrier)).scalars()}


def test_admin_adds_edits_disables_a_carrier_with_its_buy_sheet(world, new_client, login):
    admin = login(new_client(), world.admin)
    sheet = _sheet(world.platform, "Buy One", [("44", "0.010")])
    page = admin.get("/admin/carriers/new").get_data(as_text=True)
    assert "Buy One (USD)" in page                     # the platform's sheets are the choices
    resp = admin.post("/admin/carriers/new", data={**CARRIER, "buy_rate_sheet_id": str(sheet),
                                                   "username": "ringledger", "secret": "s3cret",
                                                   "strip_digits": "2", "add_prefix": "00"})
    assert resp.status_code == 303
    c = _carriers()["Wholesale One"]
    assert (c.host, c.port, c.username, c.secret, c.strip_digits, c.add_prefix, c.buy_rate_sheet_id, c.enabled) == \
        ("sip.one.example", 5060, "ringledger", "s3cret", 2, "00", sheet, True)
    assert c.tenant_id == world.platform.id
    listing = admin.get("/admin/carriers").get_data(as_text=True)
    assert f"carrier-{c.id}" in listing and "sip.one.example:5060" in listing and "strip 2 add" in listing

    # edit: a blank secret keeps the stored one; switching to IP auth clears both
    resp = admin.post(f"/admin/carriers/{c.id}/edit", data={**CARRIER, "username": "ringledger", "port": "5080",
                                                             "buy_rate_sheet_id": str(sheet)})
    assert resp.status_code == 303
    c = _carriers()["Wholesale One"]
    assert (c.port, c.secret) == (5080, "s3cret")
    admin.post(f"/admin/carriers/{c.id}/edit", data={**CARRIER, "host": "192.0.2.10"})
    c = _carriers()["Wholesale One"]
    assert (c.host, c.username, c.secret, c.buy_rate_sheet_id) == ("192.0.2.10", "", "", None)
    assert "by IP" in admin.get("/admin/carriers").get_data(as_text=True)

    assert admin.post(f"/admin/carriers/{c.id}/status", data={"action": "disable"}).status_code == 303
    assert _carriers()["Wholesale One"].enabled is False
    admin.post(f"/admin/carriers/{c.id}/status", data={"action": "enable"})
    assert _carriers()["Wholesale One"].enabled is True


def test_bad_carrier_values_are_refused_next_to_their_field_and_nothing_is_written(world, new_client, login):
    admin = login(new_client(), world.admin)
    other = _sheet(world.a, "Reseller A sheet", [("44", "0.5")])
    admin.post("/admin/carriers/new", data={**CARRIER, "name": "Taken"})
    cases = [
        ({"host": "sip://bad.example"}, "host", "without sip: or a path"),
        ({"host": "not a host!"}, "host", "not a valid host name"),
        ({"host": "sip.one.example:5070"}, "host", "Port field"),
        ({"port": "70000"}, "port", "from 1 to 65535"),
        ({"port": "50a"}, "port", "whole number"),
        ({"username": "user"}, "secret", "Enter the secret"),
        ({"secret": "x"}, "username", "Enter the username"),
        ({"strip_digits": "-1"}, "strip_digits", "from 0 to 20"),
        ({"add_prefix": "0a"}, "add_prefix", "Use up to 20 digits"),
        ({"buy_rate_sheet_id": str(other)}, "buy_rate_sheet_id", "Choose one of the platform"),
        ({"name": "taken"}, "name", "Another carrier already has this name"),
        ({"name": " "}, "name", "Enter a name"),
    ]
    for change, field, message in cases:
        resp = admin.post("/admin/carriers/new", data={**CARRIER, "name": "Fresh", **change})
        body = resp.get_data(as_text=True)
        assert resp.status_code in (400, 422), change
        assert message in body, (change, body[-2000:])
        assert f'id="{field}-error"' in body, change          # shown next to its field
    assert set(_carriers()) == {"Taken"}


def _group(admin, name="Main", strategy="lcr", default=True):
    data = {"name": name, "strategy": strategy}
    if default:
        data["is_default"] = "y"
    assert admin.post("/admin/routing/groups/new", data=data).status_code == 303
    with unscoped():
        return db.session.execute(select(RouteGroup).where(RouteGroup.name == name)).scalar_one()


def _route_rows():
    db.session.expire_all()
    with unscoped():
        out = {}
        for r in db.session.execute(select(Route)).scalars():
            out[r.prefix] = [cid for (cid,) in db.session.execute(
                select(RouteCarrier.carrier_id).where(RouteCarrier.route_id == r.id).order_by(RouteCarrier.position))]
        return out


def test_routes_take_prefixes_and_an_ordered_carrier_list(world, new_client, login):
    admin = login(new_client(), world.admin)
    for name in ("Alpha", "Bravo", "Charlie"):
        admin.post("/admin/carriers/new", data={**CARRIER, "name": name})
    ids = {n: c.id for n, c in _carriers().items()}
    group = _group(admin)
    resp = admin.post(f"/admin/routing/groups/{group.id}/routes/new",
                      data={"prefixes": "44, 4420\n+33", "carrier_1": ids["Bravo"], "carrier_2": "",
                            "carrier_3": ids["Alpha"]})
    assert resp.status_code == 303
    assert _route_rows() == {"44": [ids["Bravo"], ids["Alpha"]], "4420": [ids["Bravo"], ids["Alpha"]],
                             "33": [ids["Bravo"], ids["Alpha"]]}
    page = admin.get("/admin/routing").get_data(as_text=True)
    assert "1. Bravo → 2. Alpha" in page and "default" in page

    bad = [({"prefixes": " "}, "prefixes", "Enter at least one prefix"),
           ({"prefixes": "44a"}, "prefixes", "is not a prefix"),
           ({"prefixes": "49 49"}, "prefixes", "listed twice"),
           ({"prefixes": "4420"}, "prefixes", "already routes 4420"),
           ({"prefixes": "49", "carrier_1": ids["Alpha"], "carrier_2": ids["Alpha"]}, "carriers", "Alpha is listed twice"),
           ({"prefixes": "49", "carrier_1": ""}, "carriers", "Choose at least one carrier"),
           ({"prefixes": "49", "carrier_1": "999999"}, "carriers", "Choose carriers from the list")]
    for change, field, message in bad:
        data = {"carrier_1": ids["Charlie"], **change}
        resp = admin.post(f"/admin/routing/groups/{group.id}/routes/new", data=data)
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422 and message in body, (change, body[-1500:])
        assert f'id="{field}-error"' in body
    assert set(_route_rows()) == {"44", "4420", "33"}

    with unscoped():
        route_id = db.session.execute(select(Route.id).where(Route.prefix == "33")).scalar_one()
    page = admin.get(f"/admin/routing/routes/{route_id}/edit").get_data(as_text=True)
    assert f'<option value="{ids["Bravo"]}" selected>' in page
    resp = admin.post(f"/admin/routing/routes/{route_id}/edit",
                      data={"prefixes": "*", "carrier_1": ids["Charlie"], "carrier_2": ids["Bravo"]})
    assert resp.status_code == 303
    assert _route_rows()[""] == [ids["Charlie"], ids["Bravo"]]
    assert admin.post(f"/admin/routing/routes/{route_id}/delete").status_code == 303
    assert "" not in _route_rows()

    # a second default group takes the flag over; names are unique
    second = _group(admin, "Backup", "priority", default=True)
    db.session.expire_all()
    with unscoped():
        assert db.session.get(RouteGroup, group.id).is_default is False and second.is_default
    resp = admin.post("/admin/routing/groups/new", data={"name": "main", "strategy": "lcr"})
    assert resp.status_code == 422 and "Another route group already has this name" in resp.get_data(as_text=True)
    resp = admin.post(f"/admin/routing/groups/{group.id}/edit", data={"name": "Main", "strategy": "cheapest"})
    assert resp.status_code == 400


def test_the_lookup_shows_the_route_and_the_carrier_order_least_cost_first(world, new_client, login):
    admin = login(new_client(), world.admin)
    cheap = _sheet(world.platform, "Cheap", [("44", "0.008")])
    dear = _sheet(world.platform, "Dear", [("44", "0.020"), ("4420", "0.030")])
    admin.post("/admin/carriers/new", data={**CARRIER, "name": "Dear Co", "buy_rate_sheet_id": dear})
    admin.post("/admin/carriers/new", data={**CARRIER, "name": "Cheap Co", "buy_rate_sheet_id": cheap,
                                            "strip_digits": "2", "add_prefix": "00"})
    admin.post("/admin/carriers/new", data={**CARRIER, "name": "Unpriced"})
    ids = {n: c.id for n, c in _carriers().items()}
    group = _group(admin)
    admin.post(f"/admin/routing/groups/{group.id}/routes/new",
               data={"prefixes": "44", "carrier_1": ids["Dear Co"], "carrier_2": ids["Unpriced"],
                     "carrier_3": ids["Cheap Co"]})
    page = admin.get("/admin/routing/lookup?number=+44 20 7123 4567").get_data(as_text=True)
    assert "route <code>44</code> in Main" in page
    assert page.index("Cheap Co") < page.index("Dear Co", page.index("lookup-result"))
    assert f"PJSIP/002071234567@carrier-{ids['Cheap Co']}" in page and "0.030000" in page
    assert "Left out: Unpriced" in page
    page = admin.get("/admin/routing/lookup?number=33142").get_data(as_text=True)
    assert "No route" in page
    resp = admin.get("/admin/routing/lookup?number=call-me")
    assert 'id="number-error"' in resp.get_data(as_text=True) and resp.status_code == 200
    partial = admin.get("/admin/routing/lookup?number=442071234567", headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(as_text=True) and "lookup-result" in partial.get_data(as_text=True)


def test_the_platform_assigns_a_top_level_reseller_its_buy_sheet(world, new_client, login):
    admin = login(new_client(), world.admin)
    usd = _sheet(world.platform, "Reseller buy", [("44", "0.009")])
    eur = _sheet(world.platform, "Euro buy", [("44", "0.009")], currency="EUR")
    page = admin.get(f"/admin/resellers/{world.a.id}").get_data(as_text=True)
    assert "Reseller buy (USD)" in page and "Buys at" in page
    resp = admin.post(f"/admin/resellers/{world.a.id}/buy-sheet", data={"rate_sheet_id": str(eur)})
    assert resp.status_code == 422 and "is in EUR" in resp.get_data(as_text=True)
    assert admin.post(f"/admin/resellers/{world.a.id}/buy-sheet", data={"rate_sheet_id": str(usd)}).status_code == 303
    db.session.expire_all()
    with unscoped():
        assert db.session.get(Tenant, world.a.id).buy_rate_sheet_id == usd
    # a sub-reseller's buy sheet is its parent reseller's business, not the platform's
    assert "Buys at" not in admin.get(f"/admin/resellers/{world.a_sub.id}").get_data(as_text=True)
    assert admin.post(f"/admin/resellers/{world.a_sub.id}/buy-sheet", data={"rate_sheet_id": str(usd)}).status_code == 404


def test_reseller_logins_cannot_reach_the_routing_pages(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    for url in ("/admin/carriers", "/admin/routing", "/admin/routing/lookup?number=44"):
        assert owner.get(url).status_code == 403


def test_the_carrier_margin_shows_platform_sell_carrier_cost_and_margin_by_carrier_and_country(
        world, new_client, login):
    from datetime import datetime, timedelta

    from app.calls.models import Call

    buy = _sheet(world.platform, "Carrier buy", [("44", "0.01")])
    with unscoped():
        carrier = Carrier(tenant_id=world.platform.id, name="Wholesale One", host="sip.one.example",
                          buy_rate_sheet_id=buy)
        db.session.add(carrier)
        db.session.flush()
        when = datetime.utcnow() - timedelta(days=1)
        n = iter(range(100))

        def add(account, country, billsec, cost, buy_cost, carrier_cost, carrier_id=carrier.id):
            db.session.add(Call(tenant_id=account.tenant_id, account_id=account.id, server="pbx1",
                                uniqueid=f"m.{next(n)}", destination="442071234567", started_at=when, billsec=billsec,
                                disposition="ANSWERED", rated_at=when, country=country, cost=Decimal(cost),
                                buy_cost=None if buy_cost is None else Decimal(buy_cost),
                                carrier_id=carrier_id, carrier_cost=None if carrier_cost is None else Decimal(carrier_cost)))
        add(world.account_a, "GB", 120, "0.30", "0.10", "0.02")        # top-level reseller A pays the platform 0.10
        add(world.account_b, "GB", 60, "0.20", "0.05", "0.01")
        add(world.account_a_sub, "GB", 60, "0.25", "0.08", "0.01")     # sub-reseller: no platform price
        add(world.account_a, "FR", 60, "0.40", "0.20", None)           # no carrier rate for France
        add(world.account_b, "GB", 60, "0.20", "0.05", "0.01", carrier_id=None)   # no carrier recorded
        db.session.commit()
    admin = login(new_client(), world.admin)
    page = admin.get("/admin/routing/margin").get_data(as_text=True)
    table = page[page.index('id="carrier-margin"'):]
    gb = table[table.index("<td>GB</td>"):table.index("</tr>", table.index("<td>GB</td>"))]
    assert "<td class=\"num\">3</td>" in gb and "4.0" in gb            # 3 calls, 240 s
    # sells 0.10 + 0.05; costs 0.02 + 0.01 + 0.01; margin over the calls with both prices: 0.08 + 0.04
    assert "$0.15" in gb and "$0.04" in gb and "$0.12" in gb and gb.rstrip().endswith(">1</td>")
    fr = table[table.index("<td>FR</td>"):table.index("</tr>", table.index("<td>FR</td>"))]
    assert "0.20" in fr and "—" in fr
    resp = admin.get("/admin/routing/margin?start=2026-12-05&end=2026-12-01")
    assert resp.status_code == 422 and 'id="end-error"' in resp.get_data(as_text=True)
    resp = admin.get("/admin/routing/margin?start=yesterday")
    assert resp.status_code == 422 and "Enter a date as YYYY-MM-DD." in resp.get_data(as_text=True)


def test_with_the_buy_sheet_the_platform_assigned_a_top_level_resellers_margin_report_has_costs(
        world, new_client, login):
    import re
    from datetime import datetime

    from app.rating.cdr import rate_calls
    from tenants.scope import tenant_scope
    from tests.integration.rating_support import add_call, give_plan, make_sheet

    platform_sheet = make_sheet(world.platform, [("44", "GB", "0.30", "0", 60, 60)], name="Platform wholesale")
    give_plan(world.account_a, make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)], name="Retail"), [("GB", 0)])
    admin = login(new_client(), world.admin)
    assert admin.post(f"/admin/resellers/{world.a.id}/buy-sheet",
                      data={"rate_sheet_id": str(platform_sheet)}).status_code == 303
    call_id = add_call(world.account_a, "442071234567", 60, datetime(2025, 5, 3, 12))
    with tenant_scope(world.a.id, descendants=False):
        rate_calls([call_id])
        db.session.commit()
    html = login(new_client(), world.owner_a).get("/reseller/reports/margin?from=2025-05-01&to=2025-05-31") \
        .get_data(as_text=True)
    row = re.search(r"<tr><td>Reseller A.*?</tr>", html, re.S).group(0)
    # sells 0.60, buys at the platform's 0.30: margin 0.30 (50 %), every call priced
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["1", "1.00", "$0.60", "$0.30", "$0.30", "50.0 %", ""]
