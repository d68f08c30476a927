"""Tenant isolation by enumeration: every route, every role.

The test walks `app.url_map`. For a route that takes an id, each role asks for an object that
belongs to somebody it may not see (another reseller, its parent reseller, a sibling
account) and must get 404. Every route must send anonymous visitors to its portal's login
and answer 403 to a login of another portal. A route whose URL argument has no factory
below fails the test: a new route cannot go unchecked.
"""
import itertools
from dataclasses import dataclass

import pytest

from app.extensions import db
from app.logins.permissions import refusal
from tenants.scope import unscoped

PORTAL_OF_BLUEPRINT = {"admin": "admin", "reseller": "reseller", "customer": "portal"}
# Endpoints outside the portals, each with the reason it is public.
PUBLIC_ENDPOINTS = {
    "static": "static files",
    "favicon": "the site icon, public like static files",
    "index": "redirects to a login",
    # Signed by Stripe instead of a login; another tenant's secret or account is refused
    # (tests/integration/test_payments_webhooks.py).
    "webhooks.stripe_platform": "Stripe webhook, signature-checked",
    "webhooks.stripe_tenant": "a reseller's Stripe webhook, checked with that reseller's secret",
}
PUBLIC_IN_PORTAL = {"login", "logout"}


@dataclass
class Owner:
    """Whose object to fetch: a tenant and one of its accounts."""
    world: object
    tenant: object
    account: object


def _tenant_id(owner):
    return owner.tenant.id


def _account_id(owner):
    return owner.account.id


# URL argument name -> callable(owner) returning an id of an object that owner holds.
FACTORIES = {
    "tenant_id": _tenant_id,
    "account_id": _account_id,
}


def _server_id(owner):
    """Asterisk servers are platform-level (admin portal only): any existing one will do."""
    from sqlalchemy import select

    from app.calls.servers import AsteriskServer

    server = db.session.execute(
        select(AsteriskServer).where(AsteriskServer.name == "isolation-pbx")).scalar_one_or_none()
    if server is None:
        server = AsteriskServer(name="isolation-pbx", host="127.0.0.1", port=5038, username="u", secret="s")
        db.session.add(server)
        db.session.flush()
    return server.id


FACTORIES["server_id"] = _server_id


def _isolation_sheet(owner):
    """The owner's rate sheet with one finished deck import (created once per tenant)."""
    from decimal import Decimal

    from sqlalchemy import select

    from app.rating.imports import RateImport
    from app.rating.models import Rate, RateSheet

    sheet = db.session.execute(select(RateSheet).where(RateSheet.tenant_id == owner.tenant.id,
                                                       RateSheet.name == "Isolation sheet")).scalar_one_or_none()
    if sheet is None:
        sheet = RateSheet(tenant_id=owner.tenant.id, name="Isolation sheet", currency="USD")
        db.session.add(sheet)
        db.session.flush()
        db.session.add(Rate(tenant_id=owner.tenant.id, rate_sheet_id=sheet.id, prefix="44", country="GB",
                            rate_per_minute=Decimal("0.01")))
        db.session.add(RateImport(tenant_id=owner.tenant.id, rate_sheet_id=sheet.id,
                                  job_id=f"rate-import-isolation-{owner.tenant.id}", status="done"))
        db.session.flush()
    return sheet


def _job_id(owner):
    """Rate-deck import jobs (the progress page takes the job id)."""
    return f"rate-import-isolation-{_isolation_sheet(owner).tenant_id}"


FACTORIES["job_id"] = _job_id


def register_factory(name):
    def deco(fn):
        FACTORIES[name] = fn
        return fn
    return deco


_serial = itertools.count(1)


@register_factory("number_id")
def _number_id(owner):
    from app.numbers.models import Number

    number = Number(tenant_id=owner.tenant.id, number=f"+44207946{next(_serial):04d}", country="GB",
                    status="assigned", account_id=owner.account.id)
    db.session.add(number)
    db.session.flush()
    return number.id


@register_factory("rate_sheet_id")
def _rate_sheet_id(owner):
    from app.rating.models import RateSheet

    sheet = RateSheet(tenant_id=owner.tenant.id, name=f"Sheet {next(_serial)}", currency="USD")
    db.session.add(sheet)
    db.session.flush()
    return sheet.id


@register_factory("rate_id")
def _rate_id(owner):
    from decimal import Decimal

    from app.rating.models import Rate

    rate = Rate(tenant_id=owner.tenant.id, rate_sheet_id=_rate_sheet_id(owner), prefix="44",
                country="GB", rate_per_minute=Decimal("0.01"))
    db.session.add(rate)
    db.session.flush()
    return rate.id


@register_factory("order_id")
def _order_id(owner):
    from app.billing.orders import Order

    order = Order(tenant_id=owner.tenant.id, account_id=owner.account.id, kind="number", description="x")
    db.session.add(order)
    db.session.flush()
    return order.id


@register_factory("template_id")
def _template_id(owner):
    from app.billing.account_templates import AccountTemplate

    template = AccountTemplate(tenant_id=owner.tenant.id, name=f"Template {next(_serial)}", values={})
    db.session.add(template)
    db.session.flush()
    return template.id


@register_factory("extra_id")
def _extra_id(owner):
    from datetime import date
    from decimal import Decimal

    from app.billing.extras import Extra

    extra = Extra(tenant_id=owner.tenant.id, account_id=owner.account.id, description="Support",
                  amount=Decimal("5.00"), period="monthly", start_date=date(2026, 12, 1))
    db.session.add(extra)
    db.session.flush()
    return extra.id


@register_factory("login_id")
def _login_id(owner):
    """Another portal login on the owner's account."""
    from app.logins.operations import create_portal_login

    return create_portal_login(account_id=owner.account.id, tenant_id=owner.tenant.id,
                               email=f"portal-user{next(_serial)}@login.example", name="Portal user",
                               password="correct-horse-battery", permissions=["reports"]).id


@register_factory("payment_id")
def _payment_id(owner):
    """A Stripe top-up attempt of the owner's account (the customer's payment page)."""
    from decimal import Decimal

    from app.payments.models import Payment

    payment = Payment(tenant_id=owner.tenant.id, account_id=owner.account.id, provider="stripe",
                      provider_ref=f"cs_isolation_{next(_serial)}", amount=Decimal("10"), currency="USD")
    db.session.add(payment)
    db.session.flush()
    return payment.id


@register_factory("run_id")
def _run_id(owner):
    """A billing run of the owner's tenant."""
    from app.billing.cycle import ChargeRun

    run = ChargeRun(tenant_id=owner.tenant.id, period=f"2026-{next(_serial) % 12 + 1:02d}", passes=0)
    db.session.add(run)
    db.session.flush()
    return run.id


@register_factory("call_id")
def _call_id(owner):
    """A call of the owner's account, rated with an error (the one a re-rate would change)."""
    from datetime import datetime

    from app.calls.models import Call

    call = Call(tenant_id=owner.tenant.id, account_id=owner.account.id, server="isolation-pbx",
                uniqueid=f"iso.{next(_serial)}", destination="33142", started_at=datetime(2025, 5, 10, 12),
                billsec=30, disposition="ANSWERED", rated_at=datetime(2025, 5, 10, 12, 1),
                rating_error="FR (prefix 33) is not opened by the plan")
    db.session.add(call)
    db.session.flush()
    return call.id


@register_factory("rerating_id")
def _rerating_id(owner):
    """A finished "re-rate every unrated call of the filter" run of the owner's tenant."""
    from app.rating.rerate import CallRerating

    run = CallRerating(tenant_id=owner.tenant.id, job_id=f"call-rerate-isolation-{next(_serial)}",
                       filters={}, status="done", message="Done.")
    db.session.add(run)
    db.session.flush()
    return run.id


def _platform_route(owner):
    """Carriers, route groups and routes are platform-level (admin portal only): one of each."""
    from sqlalchemy import select

    from app.routing.models import Carrier, Route, RouteCarrier, RouteGroup
    from tenants.models import Tenant

    root = db.session.execute(select(Tenant).where(Tenant.parent_id.is_(None)).order_by(Tenant.id)).scalars().first()
    route = db.session.execute(select(Route).where(Route.prefix == "4477")).scalar_one_or_none()
    if route is None:
        carrier = Carrier(tenant_id=root.id, name="Isolation carrier", host="sip.carrier.example")
        group = RouteGroup(tenant_id=root.id, name="Isolation group", strategy="priority")
        db.session.add_all([carrier, group])
        db.session.flush()
        route = Route(tenant_id=root.id, group_id=group.id, prefix="4477")
        db.session.add(route)
        db.session.flush()
        db.session.add(RouteCarrier(tenant_id=root.id, route_id=route.id, carrier_id=carrier.id, position=0))
        db.session.flush()
    carrier_id = db.session.execute(select(RouteCarrier.carrier_id).where(RouteCarrier.route_id == route.id)).scalar()
    return route, carrier_id


FACTORIES["carrier_id"] = lambda owner: _platform_route(owner)[1]
FACTORIES["group_id"] = lambda owner: _platform_route(owner)[0].group_id
FACTORIES["route_id"] = lambda owner: _platform_route(owner)[0].id


@register_factory("trunk_id")
def _trunk_id(owner):
    """An IP trunk of the owner's account (its own address: addresses are unique platform-wide)."""
    from provisioning.trunks import CustomerTrunk

    n = next(_serial)
    trunk = CustomerTrunk(tenant_id=owner.tenant.id, account_id=owner.account.id, name=f"Trunk {n}",
                          hosts=f"198.18.{n // 250}.{n % 250 + 1}", call_limit=2, cps_limit=1)
    db.session.add(trunk)
    db.session.flush()
    return trunk.id


@register_factory("user_change_id")
def _user_change_id(owner):
    """A scheduled user-count decrease of the owner's account (one waits per account: reused)."""
    from datetime import date

    from sqlalchemy import select

    from app.billing.user_changes import ScheduledUserChange

    change = db.session.execute(select(ScheduledUserChange).where(
        ScheduledUserChange.account_id == owner.account.id, ScheduledUserChange.status == "scheduled")).scalar_one_or_none()
    if change is None:
        change = ScheduledUserChange(tenant_id=owner.tenant.id, account_id=owner.account.id, from_users=2, to_users=1,
                                     effective_on=date(2027, 1, 1), period="2027-01")
        db.session.add(change)
        db.session.flush()
    return change.id


# Documents: a counter of their own (run_id above derives its period from _serial).
_documents = itertools.count(1)


@register_factory("invoice_id")
def _invoice_id(owner):
    """An issued (open) invoice of the owner's account, with one line."""
    from datetime import date, datetime
    from decimal import Decimal

    from app.invoicing.models import Invoice, InvoiceLine

    n = next(_documents)
    inv = Invoice(tenant_id=owner.tenant.id, account_id=owner.account.id, kind="invoice", period_key=f"iso-{n}",
                  period_start=date(2026, 10, 1), period_end=date(2026, 11, 1), status="open",
                  number=f"ISO-{owner.tenant.id}-{n:06d}", series=f"ISO-{owner.tenant.id}-", sequence=n, currency="USD",
                  subtotal=Decimal("10"), tax_total=Decimal("0"), total=Decimal("10"), amount_paid=Decimal("0"),
                  issued_at=datetime(2026, 11, 1, 6), due_date=date(2026, 11, 15), customer={}, seller={})
    db.session.add(inv)
    db.session.flush()
    db.session.add(InvoiceLine(tenant_id=owner.tenant.id, invoice_id=inv.id, position=0, kind="recurring",
                               description="Plan", amount=Decimal("10")))
    db.session.flush()
    return inv.id


@register_factory("statement_id")
def _statement_id(owner):
    """A prepaid statement of the owner's account."""
    from datetime import date
    from decimal import Decimal

    from app.invoicing.models import Statement

    st = Statement(tenant_id=owner.tenant.id, account_id=owner.account.id, period_key=f"iso-{next(_documents)}",
                   period_start=date(2026, 10, 1), period_end=date(2026, 11, 1), currency="USD",
                   opening_balance=Decimal("1"), credits=Decimal("0"), charges=Decimal("0"),
                   closing_balance=Decimal("1"), customer={})
    db.session.add(st)
    db.session.flush()
    return st.id


@register_factory("receipt_id")
def _receipt_id(owner):
    """A receipt of a credit of the owner's account."""
    from decimal import Decimal

    from app.invoicing.models import Receipt

    n = next(_documents)
    r = Receipt(tenant_id=owner.tenant.id, account_id=owner.account.id, ledger_key=f"iso:{n}",
                number=f"ISO-R-{owner.tenant.id}-{n}", series=f"ISO-R-{owner.tenant.id}-", sequence=n, kind="credit",
                currency="USD", amount=Decimal("5"), net=Decimal("5"), taxes=[], customer={}, seller={})
    db.session.add(r)
    db.session.flush()
    return r.id


_tax_serial = itertools.count(1)     # its own counter: run_id's periods come from _serial (mod 12)


@register_factory("tax_id")
def _tax_id(owner):
    """A tax of the owner's reseller (the taxes list)."""
    from decimal import Decimal

    from app.invoicing.models import Tax

    tax = Tax(tenant_id=owner.tenant.id, name=f"Tax {next(_tax_serial)}", rate=Decimal("20"), position=1)
    db.session.add(tax)
    db.session.flush()
    return tax.id


@pytest.fixture
def world(world, make_login):
    """The shared world plus a login of every further role: a platform sub-admin, a read-only
    reseller login, and a second portal login of account A holding every permission."""
    from app.logins.permissions import PORTAL_PERMISSIONS

    world.subadmin = make_login(world.platform, "platform_subadmin")
    world.readonly_a = make_login(world.a, "reseller_readonly")
    world.user_a = make_login(world.a, "account_user", account=world.account_a)
    with unscoped():
        world.user_a.permissions = list(PORTAL_PERMISSIONS)
        db.session.commit()
    return world


def _portal_rules(app):
    rules = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".")[0] if "." in rule.endpoint else None
        if blueprint is None:
            assert rule.endpoint in PUBLIC_ENDPOINTS, f"{rule.rule} ({rule.endpoint}) is outside every portal"
            continue
        if blueprint not in PORTAL_OF_BLUEPRINT:
            assert rule.endpoint in PUBLIC_ENDPOINTS, f"{rule.rule} ({rule.endpoint}): unknown blueprint"
            continue
        if rule.endpoint.split(".")[-1] in PUBLIC_IN_PORTAL:
            continue
        rules.append((blueprint, rule))
    return rules


def _methods(rule):
    return sorted(m for m in rule.methods if m in ("GET", "POST", "PUT", "PATCH", "DELETE"))


def _url(rule, owner):
    values = {}
    for arg in rule.arguments:
        assert arg in FACTORIES, (
            f"route {rule.rule} takes <{arg}>: add a factory for it in tests/integration/test_isolation.py")
        with unscoped():
            values[arg] = FACTORIES[arg](owner)
            db.session.commit()
    return rule.build(values, append_unknown=False)[1]


def _roles(world):
    """(login, portal blueprint, owners whose objects that login must not see)."""
    w = world
    b = Owner(w, w.b, w.account_b)
    parent = Owner(w, w.a, w.account_a)
    sibling = Owner(w, w.a, w.account_a2)
    return [
        (w.owner_a, "reseller", [b]),
        (w.staff_a, "reseller", [b]),
        (w.owner_a_sub, "reseller", [parent, b]),
        (w.customer_a, "customer", [sibling, b]),
        (w.admin, "admin", []),
        (w.subadmin, "admin", []),
        (w.readonly_a, "reseller", [b]),
        (w.user_a, "customer", [sibling, b]),
    ]


def _request(client, method, url):
    return client.open(url, method=method, data={})


def test_every_route_with_an_id_answers_404_for_objects_the_login_may_not_see(app, world, new_client, login):
    checked = 0
    for user, portal, others in _roles(world):
        client = login(new_client(), user)
        for blueprint, rule in _portal_rules(app):
            if blueprint != portal or not rule.arguments:
                continue
            for owner in others:
                url = _url(rule, owner)
                for method in _methods(rule):
                    resp = _request(client, method, url)
                    # A role refused the action outright (read-only POST) answers 403 whether or
                    # not the object exists, which tells nothing about other tenants either.
                    expected = 403 if refusal(user.role, user.permissions, blueprint,
                                              rule.endpoint.split(".")[-1], method) else 404
                    assert resp.status_code == expected, (
                        f"{user.email} ({user.role}) {method} {url} -> {resp.status_code}, expected {expected}")
                    checked += 1
    assert checked > 0


def test_every_portal_route_sends_anonymous_visitors_to_that_portals_login(app, world, client):
    own = Owner(world, world.a, world.account_a)
    for blueprint, rule in _portal_rules(app):
        url = _url(rule, own)
        for method in _methods(rule):
            resp = _request(client, method, url)
            assert resp.status_code == 302, f"anonymous {method} {url} -> {resp.status_code}"
            assert resp.headers["Location"].startswith(f"/{PORTAL_OF_BLUEPRINT[blueprint]}/login"), (
                f"anonymous {method} {url} -> {resp.headers['Location']}")


@pytest.mark.parametrize("role_index", range(8))
def test_every_portal_route_answers_403_to_a_login_of_another_portal(app, world, new_client, login, role_index):
    user, portal, _ = _roles(world)[role_index]
    client = login(new_client(), user)
    own = Owner(world, world.a, world.account_a)
    for blueprint, rule in _portal_rules(app):
        if blueprint == portal:
            continue
        url = _url(rule, own)
        for method in _methods(rule):
            resp = _request(client, method, url)
            assert resp.status_code == 403, f"{user.role} {method} {url} -> {resp.status_code}, expected 403"


def test_the_own_objects_are_reachable_so_the_404s_above_mean_something(app, world, new_client, login):
    """Each reseller route with an id answers its own tenant's object with something other than 404."""
    client = login(new_client(), world.owner_a)
    own = Owner(world, world.a, world.account_a)
    for blueprint, rule in _portal_rules(app):
        if blueprint != "reseller" or not rule.arguments or "GET" not in rule.methods:
            continue
        resp = client.get(_url(rule, own))
        assert resp.status_code != 404, f"GET {rule.rule} for the reseller's own object -> 404"


# --- roles and permissions inside a portal -------------------------------------------------

def _statuses(client, rules, own, methods=None):
    """{(endpoint, method): status} for every rule of one blueprint."""
    out = {}
    for rule in rules:
        url = _url(rule, own)
        for method in _methods(rule):
            if methods is None or method in methods:
                out[(rule.endpoint.split(".")[-1], method)] = _request(client, method, url).status_code
    return out


def _rules_of(app, blueprint):
    return [rule for bp, rule in _portal_rules(app) if bp == blueprint]


def test_a_read_only_reseller_login_opens_every_page_but_changes_nothing(app, world, new_client, login):
    client = login(new_client(), world.readonly_a)
    own = Owner(world, world.a, world.account_a)
    statuses = _statuses(client, _rules_of(app, "reseller"), own)
    writes = {k: v for k, v in statuses.items() if k[1] != "GET"}
    reads = {k: v for k, v in statuses.items() if k[1] == "GET"}
    assert writes and all(v == 403 for v in writes.values()), {k: v for k, v in writes.items() if v != 403}
    assert reads and all(v not in (403, 404) for v in reads.values()), {k: v for k, v in reads.items() if v in (403, 404)}


def test_a_platform_sub_admin_cannot_manage_admins_or_platform_settings(app, world, new_client, login):
    from app.logins.permissions import ADMIN_ONLY_ENDPOINTS

    own = Owner(world, world.a, world.account_a)
    sub = _statuses(login(new_client(), world.subadmin), _rules_of(app, "admin"), own, {"GET"})
    admin = _statuses(login(new_client(), world.admin), _rules_of(app, "admin"), own, {"GET"})
    for (endpoint, method), status in sub.items():
        if endpoint in ADMIN_ONLY_ENDPOINTS:
            assert status == 403, f"sub-admin {method} {endpoint} -> {status}"
            assert admin[(endpoint, method)] == 200, f"admin {method} {endpoint} -> {admin[(endpoint, method)]}"
        else:
            assert status not in (403, 404), f"sub-admin {method} {endpoint} -> {status}"
    assert ADMIN_ONLY_ENDPOINTS <= {e for e, _ in sub}, "an admin-only endpoint no longer exists"


def test_every_customer_portal_route_is_covered_by_a_permission(app):
    from app.logins.permissions import PORTAL_ADMIN_ONLY, PORTAL_ALWAYS, permission_of

    for rule in _rules_of(app, "customer"):
        endpoint = rule.endpoint.split(".")[-1]
        assert endpoint in PORTAL_ALWAYS | PORTAL_ADMIN_ONLY or permission_of(endpoint), (
            f"{rule.rule} ({endpoint}): add it to a permission in app/logins/permissions.py")


@pytest.mark.parametrize("granted", [[], ["transactions"], ["reports"], ["users"], ["numbers"], ["payments"]])
def test_a_portal_login_opens_only_the_pages_its_permissions_name(app, world, new_client, login, granted):
    from app.logins.permissions import PORTAL_ALWAYS, PORTAL_PERMISSIONS, permission_of

    with unscoped():
        world.user_a.permissions = granted
        db.session.commit()
    client = login(new_client(), world.user_a)
    own = Owner(world, world.a, world.account_a)
    statuses = _statuses(client, _rules_of(app, "customer"), own)
    for (endpoint, method), status in statuses.items():
        key = permission_of(endpoint)
        if endpoint in PORTAL_ALWAYS or key in granted:
            assert status != 403, f"{granted}: {method} {endpoint} -> 403"
        else:
            assert status == 403, f"{granted}: {method} {endpoint} -> {status}, expected 403"
    # The account administrator opens them all.
    admin = _statuses(login(new_client(), world.customer_a), _rules_of(app, "customer"), own, {"GET"})
    assert admin and all(v != 403 for v in admin.values()), admin
    assert set(PORTAL_PERMISSIONS) == {permission_of(e) for e, _ in statuses if permission_of(e)}
