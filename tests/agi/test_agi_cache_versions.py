"""The version counters call control caches under (app/routing/cache_versions.py): a trigger
bumps an account's version when a row its profile reads changes, the routing version when a
route, carrier or buy sheet changes, and nothing when only other columns change (the AMI
watcher updates extensions' registration all day)."""
from sqlalchemy import select, update

from app.billing.models import PlanCountry, ServicePlan
from app.extensions import db
from app.numbers.models import Number
from app.rating.models import RateSheet
from app.routing.cache_versions import CacheVersion
from app.routing.models import Carrier, RouteCarrier
from app.routing.rules import add_rule
from provisioning.models import Extension
from tests.agi.client import call
from tests.agi.test_agi_routing import carriers, group, legs
from tests.ami.db_harness import calling_account, fresh_account
from tests.agi.test_agi_cache import _root
from tenants.models import Tenant
from tenants.scope import unscoped

UK = "442071234567"


def versions() -> dict:
    db.session.rollback()
    with unscoped():
        return {(v.scope, v.key): v.version for v in db.session.execute(select(CacheVersion)).scalars()}


def account_version(account_id) -> int:
    return versions().get(("account", account_id), 0)


def routing_version() -> int:
    return versions().get(("routing", 0), 0)


def test_each_table_of_a_profile_bumps_its_account_and_no_other(make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    other, _ = calling_account(make_tenant, make_account, credit="50.00")
    before, theirs = account_version(account.id), account_version(other.id)
    assert before > 0                                  # its plan and extensions were created
    with unscoped():
        add_rule(fresh_account(account.id), "deny", "44207")
        db.session.commit()
    assert account_version(account.id) == before + 1
    with unscoped():
        db.session.execute(update(Extension).where(Extension.account_id == account.id)
                           .values(sip_username=Extension.sip_username + "x"))     # one statement, two rows
        db.session.commit()
    assert account_version(account.id) == before + 2
    with unscoped():
        plan_id = db.session.execute(select(ServicePlan.id).where(ServicePlan.account_id == account.id)).scalar_one()
        db.session.execute(update(PlanCountry).where(PlanCountry.plan_id == plan_id).values(minutes=PlanCountry.minutes + 5))
        db.session.commit()
    assert account_version(account.id) == before + 3
    assert account_version(other.id) == theirs


def test_registration_columns_and_unread_columns_bump_nothing(make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    before, routing = account_version(account.id), routing_version()
    with unscoped():
        db.session.execute(update(Extension).where(Extension.account_id == account.id)
                           .values(registered=True, contact_address="sip:1@10.0.0.9:5060"))
        sheet_id = db.session.execute(select(ServicePlan.rate_sheet_id).where(ServicePlan.account_id == account.id)).scalar_one()
        db.session.execute(update(RateSheet).where(RateSheet.id == sheet_id).values(name="Renamed"))
        db.session.commit()
    assert (account_version(account.id), routing_version()) == (before, routing)
    with unscoped():
        db.session.execute(update(RateSheet).where(RateSheet.id == sheet_id).values(version=RateSheet.version + 1))
        db.session.commit()
    assert account_version(account.id) == before + 1 and routing_version() == routing   # not a buy sheet


def test_a_number_moved_between_accounts_bumps_both(make_tenant, make_account):
    a, a_exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        b = make_account(db.session.get(Tenant, a.tenant_id), credit="5.00")
        db.session.add(Number(tenant_id=a.tenant_id, number="+442071110000", country="GB", status="assigned",
                              account_id=a.id))
        db.session.commit()
    va, vb = account_version(a.id), account_version(b.id)
    with unscoped():
        db.session.execute(update(Number).where(Number.number == "+442071110000").values(account_id=b.id))
        db.session.commit()
    assert (account_version(a.id), account_version(b.id)) == (va + 1, vb + 1)


def test_routes_carriers_and_buy_sheets_bump_the_routing_version(make_tenant, make_account):
    with unscoped():
        root = _root()
    (a,) = carriers(root, [("alpha", "0.020", 0, "")])
    v = routing_version()
    assert v > 0
    group(root, "Default", "lcr", {"44": [a]}, default=True)
    assert routing_version() > v
    v = routing_version()
    with unscoped():
        carrier = db.session.execute(select(Carrier).where(Carrier.id == a)).scalar_one()
        carrier.add_prefix = "00"
        db.session.flush()
        db.session.execute(update(RateSheet).where(RateSheet.id == carrier.buy_rate_sheet_id)
                           .values(version=RateSheet.version + 1))
        db.session.commit()
    assert routing_version() == v + 2


def test_a_route_added_applies_to_the_next_call_and_registrations_reload_nothing(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        root = _root()
    a, b = carriers(root, [("alpha", "0.020", 0, ""), ("bravo", "0.010", 0, "")])
    group(root, "Default", "lcr", {"44": [a]}, default=True)
    endpoint = exts[0][1]
    assert legs(call(agi.port, "outbound", (endpoint, UK))) == [f"PJSIP/{UK}@carrier-{a}"]
    profiles = agi.control.fast.reloads["profile"]
    with unscoped():
        db.session.execute(update(Extension).where(Extension.account_id == account.id).values(registered=True))
        db.session.execute(update(RouteCarrier).values(carrier_id=b))      # the route now goes to bravo
        db.session.commit()
    s = call(agi.port, "outbound", (endpoint, UK))
    assert s.variables["RL_DECISION"] == "ALLOW" and legs(s) == [f"PJSIP/{UK}@carrier-{b}"]
    assert agi.control.fast.reloads["profile"] == profiles     # the registration changed no profile
