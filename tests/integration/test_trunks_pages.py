"""Customer IP trunks on the reseller's account page and the limits view (issue 19, point 7)."""
from sqlalchemy import select

from app.extensions import db
from provisioning.realtime import PsEndpoint, PsEndpointIdIp
from provisioning.trunks import CustomerTrunk
from tenants.scope import unscoped

TRUNK = dict(name="Office PBX", hosts="203.0.113.10, 198.51.100.0/29", call_limit="4", cps_limit="2", enabled="y")


def _trunks(account_id):
    db.session.expire_all()
    with unscoped():
        return {t.name: t for t in db.session.execute(
            select(CustomerTrunk).where(CustomerTrunk.account_id == account_id)).scalars()}


def _realtime(endpoint):
    db.session.expire_all()
    with unscoped():
        ep = db.session.execute(select(PsEndpoint).where(PsEndpoint.id == endpoint)).scalar_one_or_none()
        ips = sorted(db.session.execute(select(PsEndpointIdIp.match).where(PsEndpointIdIp.endpoint == endpoint)).scalars())
        return ep, ips


def test_a_reseller_adds_edits_disables_and_deletes_a_trunk_with_its_switch_rows(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    account = world.account_a
    resp = owner.post(f"/reseller/accounts/{account.id}/trunks", data=TRUNK)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#trunks")
    trunk = _trunks(account.id)["Office PBX"]
    assert (trunk.hosts, trunk.call_limit, trunk.cps_limit, trunk.enabled) == \
        ("203.0.113.10 198.51.100.0/29", 4, 2, True)
    ep, ips = _realtime(trunk.endpoint)
    assert ep.accountcode == account.account_number and ep.auth is None and ep.trunk_id == trunk.id
    assert ips == ["198.51.100.0/29", "203.0.113.10"]
    section = owner.get(f"/reseller/accounts/{account.id}/trunks", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in section and "198.51.100.0/29" in section and trunk.endpoint in section
    assert "IP trunks" in owner.get(f"/reseller/accounts/{account.id}").get_data(as_text=True)

    resp = owner.post(f"/reseller/accounts/{account.id}/trunks/{trunk.id}/edit",
                      data={**TRUNK, "hosts": "203.0.113.11", "call_limit": "10"})
    assert resp.status_code == 303
    assert _realtime(trunk.endpoint)[1] == ["203.0.113.11"] and _trunks(account.id)["Office PBX"].call_limit == 10

    owner.post(f"/reseller/accounts/{account.id}/trunks/{trunk.id}/status", data={"action": "disable"})
    assert _trunks(account.id)["Office PBX"].enabled is False and _realtime(trunk.endpoint) == (None, [])
    owner.post(f"/reseller/accounts/{account.id}/trunks/{trunk.id}/status", data={"action": "enable"})
    assert _realtime(trunk.endpoint)[1] == ["203.0.113.11"]
    endpoint = trunk.endpoint
    assert owner.post(f"/reseller/accounts/{account.id}/trunks/{trunk.id}/delete").status_code == 303
    assert _trunks(account.id) == {} and _realtime(endpoint) == (None, [])


def test_bad_trunk_values_are_refused_next_to_their_field(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    owner_b = login(new_client(), world.owner_b)
    assert owner_b.post(f"/reseller/accounts/{world.account_b.id}/trunks",
                        data={**TRUNK, "name": "B trunk", "hosts": "192.0.2.0/28"}).status_code == 303
    cases = [({"hosts": ""}, "hosts", "Enter the IP address"),
             ({"hosts": "pbx.example.com"}, "hosts", "is not an IP address or network"),
             ({"hosts": "203.0.113.5/24"}, "hosts", "has host bits set"),
             ({"hosts": "10.0.0.0/8"}, "hosts", "too wide"),
             ({"hosts": "203.0.113.10 203.0.113.0/28"}, "hosts", "overlaps"),
             ({"hosts": "192.0.2.7"}, "hosts", "already another trunk"),   # reseller B's, not named
             ({"call_limit": "-1"}, "call_limit", "Enter a call limit"),
             ({"cps_limit": "lots"}, "cps_limit", "Enter a CPS limit"),
             ({"name": ""}, "name", "Enter a name")]
    for change, field, message in cases:
        resp = owner.post(f"/reseller/accounts/{world.account_a.id}/trunks", data={**TRUNK, **change})
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422 and message in body, (change, body[-1500:])
        assert f'id="{field}-error"' in body, change
        assert "Reseller B" not in body and "B trunk" not in body
    assert _trunks(world.account_a.id) == {}
    owner.post(f"/reseller/accounts/{world.account_a.id}/trunks", data=TRUNK)
    resp = owner.post(f"/reseller/accounts/{world.account_a.id}/trunks", data={**TRUNK, "hosts": "203.0.113.99"})
    assert resp.status_code == 422 and "already has a trunk with this name" in resp.get_data(as_text=True)


def test_a_trunk_of_another_account_or_reseller_answers_404(world, new_client, login):
    owner_b = login(new_client(), world.owner_b)
    owner_b.post(f"/reseller/accounts/{world.account_b.id}/trunks", data={**TRUNK, "hosts": "192.0.2.1"})
    trunk = _trunks(world.account_b.id)["Office PBX"]
    owner = login(new_client(), world.owner_a)
    assert owner.get(f"/reseller/accounts/{world.account_b.id}/trunks/{trunk.id}/edit").status_code == 404
    # the owner's own account in the URL does not unlock another account's trunk
    assert owner.post(f"/reseller/accounts/{world.account_a.id}/trunks/{trunk.id}/delete").status_code == 404
    assert "Office PBX" in _trunks(world.account_b.id)


def test_the_limits_view_lists_accounts_trunks_and_ips_searchable_by_name_and_ip(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    owner.post(f"/reseller/accounts/{world.account_a.id}/trunks", data=TRUNK)
    owner.post(f"/reseller/accounts/{world.account_a2.id}/trunks",
               data={**TRUNK, "name": "Warehouse", "hosts": "2001:db8:5::/64", "call_limit": "0"})
    owner_b = login(new_client(), world.owner_b)
    owner_b.post(f"/reseller/accounts/{world.account_b.id}/trunks", data={**TRUNK, "name": "Bee", "hosts": "192.0.2.1"})

    page = owner.get("/reseller/limits").get_data(as_text=True)
    assert "Office PBX" in page and "Warehouse" in page and "2001:db8:5::/64" in page
    assert world.account_a_sub.name in page                      # the sub-reseller's account too
    assert "Bee" not in page and world.account_b.name not in page
    page = owner.get("/reseller/limits?q=198.51.100").get_data(as_text=True)
    assert "Office PBX" in page and "Warehouse" not in page
    page = owner.get("/reseller/limits?q=wareHOUSE").get_data(as_text=True)
    assert "Warehouse" in page and "Office PBX" not in page
    page = owner.get(f"/reseller/limits?q={world.account_a2.name}").get_data(as_text=True)
    assert "Warehouse" in page
    assert "Nothing matches" in owner.get("/reseller/limits?q=192.0.2.1").get_data(as_text=True)
    partial = owner.get("/reseller/limits?q=203.0", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial and "Office PBX" in partial

    admin = login(new_client(), world.admin)
    page = admin.get("/admin/limits?q=192.0.2").get_data(as_text=True)
    assert "Bee" in page and "Reseller B" in page and "Office PBX" not in page
    assert "Office PBX" in admin.get("/admin/limits").get_data(as_text=True)
    customer = login(new_client(), world.customer_a)
    assert customer.get("/reseller/limits").status_code == 403


def test_closing_the_account_removes_its_trunks_switch_rows_and_reopening_brings_them_back(world, new_client, login):
    from app.accounts.models import Account
    from provisioning import extensions

    owner = login(new_client(), world.owner_a)
    owner.post(f"/reseller/accounts/{world.account_a.id}/trunks", data=TRUNK)
    trunk = _trunks(world.account_a.id)["Office PBX"]
    with unscoped():
        account = db.session.execute(select(Account).where(Account.id == world.account_a.id)).scalar_one()
        extensions.deactivate_all(account)
        db.session.commit()
    assert _realtime(trunk.endpoint) == (None, [])
    with unscoped():
        account = db.session.execute(select(Account).where(Account.id == world.account_a.id)).scalar_one()
        extensions.reactivate_all(account)
        db.session.commit()
    assert _realtime(trunk.endpoint)[1] == ["198.51.100.0/29", "203.0.113.10"]
