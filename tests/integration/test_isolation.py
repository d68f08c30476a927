"""Tenant isolation by enumeration: every route, every role.

The test walks `app.url_map`. For a route that takes an id, each role asks for an object that
belongs to somebody it may not see (another reseller, its parent reseller, a sibling
account) and must get 404. Every route must send anonymous visitors to its portal's login
and answer 403 to a login of another portal. A route whose URL argument has no factory
below fails the test: a new route cannot go unchecked.
"""
from dataclasses import dataclass

import pytest

from app.extensions import db
from tenants.scope import unscoped

PORTAL_OF_BLUEPRINT = {"admin": "admin", "reseller": "reseller", "customer": "portal"}
# Endpoints outside the portals, each with the reason it is public.
PUBLIC_ENDPOINTS = {
    "static": "static files",
    "index": "redirects to a login",
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


def register_factory(name):
    def deco(fn):
        FACTORIES[name] = fn
        return fn
    return deco


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
                    assert resp.status_code == 404, (
                        f"{user.email} ({user.role}) {method} {url} -> {resp.status_code}, expected 404")
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


@pytest.mark.parametrize("role_index", range(5))
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
