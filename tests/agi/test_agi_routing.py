"""Carriers, route groups, LCR/priority order and customer routes, over the AGI protocol."""
from sqlalchemy import select

from app.extensions import db
from app.routing.models import Carrier, CustomerRoute, Route, RouteCarrier, RouteGroup
from provisioning.models import Extension
from tests.agi.client import call
from tests.ami.db_harness import calling_account, make_sheet
from tenants.models import Tenant
from tenants.scope import unscoped

UK = "442071234567"


def dial(agi, endpoint, number):
    return call(agi.port, "outbound", (endpoint, number), extension=number)


def _root():
    return db.session.execute(select(Tenant).order_by(Tenant.id).limit(1)).scalar_one()


def carriers(tenant, specs):
    """specs: (name, buy per minute for 44 or None, strip, add)."""
    made = []
    with unscoped():
        for name, rate, strip, add in specs:
            sheet = make_sheet(tenant, (("44", "GB", rate),)) if rate else None
            c = Carrier(tenant_id=tenant.id, name=name, host=f"{name}.example", strip_digits=strip,
                        add_prefix=add, buy_rate_sheet_id=sheet.id if sheet else None)
            db.session.add(c)
            db.session.flush()
            made.append(c.id)
        db.session.commit()
    return made


def group(tenant, name, strategy, routes, default=False):
    """routes: {prefix: [carrier ids in position order]}."""
    with unscoped():
        g = RouteGroup(tenant_id=tenant.id, name=name, strategy=strategy, is_default=default)
        db.session.add(g)
        db.session.flush()
        for prefix, ids in routes.items():
            r = Route(tenant_id=tenant.id, group_id=g.id, prefix=prefix)
            db.session.add(r)
            db.session.flush()
            for pos, cid in enumerate(ids):
                db.session.add(RouteCarrier(tenant_id=tenant.id, route_id=r.id, carrier_id=cid, position=pos))
        db.session.commit()
        return g.id


def legs(session):
    n = int(session.variables["RL_DIAL_COUNT"])
    return [session.variables[f"RL_DIAL_{i}"] for i in range(1, n + 1)]


def test_least_cost_orders_carriers_by_buy_rate_and_skips_unpriced(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        root = _root()
    a, b, c, d = carriers(root, [("alpha", "0.020", 0, ""), ("bravo", "0.010", 2, "00"),
                                 ("charlie", None, 0, ""), ("delta", "0.015", 0, "9")])
    group(root, "Default", "lcr", {"": [a, c], "44": [a, b, c, d]}, default=True)
    s = dial(agi, exts[0][1], UK)
    assert s.variables["RL_DECISION"] == "ALLOW"
    assert legs(s) == [f"PJSIP/002071234567@carrier-{b}", f"PJSIP/9{UK}@carrier-{d}",
                       f"PJSIP/{UK}@carrier-{a}"]
    assert [s.variables[f"RL_CARRIER_{i}"] for i in (1, 2, 3)] == [str(b), str(d), str(a)]


def test_priority_keeps_the_listed_order_and_disabled_carriers_drop_out(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        root = _root()
    a, b, c = carriers(root, [("alpha", "0.020", 0, ""), ("bravo", "0.010", 0, ""), ("charlie", None, 0, "")])
    group(root, "Fixed", "priority", {"44": [c, a, b]}, default=True)
    assert legs(dial(agi, exts[0][1], UK)) == [f"PJSIP/{UK}@carrier-{x}" for x in (c, a, b)]
    with unscoped():
        db.session.get(Carrier, a).enabled = False
        db.session.commit()
    assert legs(dial(agi, exts[0][1], UK)) == [f"PJSIP/{UK}@carrier-{x}" for x in (c, b)]


def test_no_route_is_refused_with_cause_3(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        root = _root()
    (a,) = carriers(root, [("alpha", "0.020", 0, "")])
    group(root, "Default", "lcr", {"33": [a]}, default=True)
    s = dial(agi, exts[0][1], UK)
    assert (s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == ("no_route", "3") and s.hung_up


def test_customer_route_per_account_and_per_extension(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        root = _root()
    a, b, c = carriers(root, [("alpha", "0.020", 0, ""), ("bravo", "0.010", 0, ""), ("charlie", "0.030", 0, "")])
    group(root, "Default", "lcr", {"44": [a]}, default=True)
    premium = group(root, "Premium", "lcr", {"44": [b]})
    cheap = group(root, "Cheap", "lcr", {"44": [c]})
    assert legs(dial(agi, exts[0][1], UK)) == [f"PJSIP/{UK}@carrier-{a}"]
    with unscoped():
        ext_id = db.session.execute(select(Extension.id).where(Extension.sip_username == exts[1][1])).scalar_one()
        db.session.add(CustomerRoute(tenant_id=account.tenant_id, account_id=account.id, group_id=premium))
        db.session.add(CustomerRoute(tenant_id=account.tenant_id, account_id=account.id,
                                     extension_id=ext_id, group_id=cheap))
        db.session.commit()
    assert legs(dial(agi, exts[0][1], UK)) == [f"PJSIP/{UK}@carrier-{b}"]     # the account's
    assert legs(dial(agi, exts[1][1], UK)) == [f"PJSIP/{UK}@carrier-{c}"]     # the extension's own
