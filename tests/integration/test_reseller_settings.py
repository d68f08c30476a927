"""Reseller settings page (/reseller/settings): the call charge precision (issue 14), and the
transactions pages showing the decimals a balance really has."""
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import ledger
from app.audit import AuditEntry
from app.extensions import db
from app.rating.cdr import CallRecord, store_rated_calls
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import give_plan, make_sheet

URL = "/reseller/settings"


def places_of(tenant_id) -> int:
    db.session.rollback()
    with unscoped():
        return db.session.execute(select(Tenant.call_charge_places).where(Tenant.id == tenant_id)).scalar_one()


def audits(tenant_id):
    with unscoped():
        return db.session.execute(select(AuditEntry).where(AuditEntry.action == "reseller.call_charge_places",
                                                           AuditEntry.tenant_id == tenant_id)).scalars().all()


def test_a_new_reseller_starts_at_four_places_and_the_page_shows_it_with_examples(world, client, login):
    login(client, world.owner_a)
    resp = client.get(URL)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'name="call_charge_places"' in html and '<option selected value="4">' in html
    assert 'href="/reseller/settings"' in html                        # in the reseller nav
    # the example call (7 s at 0.005/min = 0.000583…) at each setting
    example = html.split('id="precision-example"')[1]
    cells = [c.split("<")[0] for c in example.split('<td class="num">')[1:]]
    assert cells == ["$0.00", "$0.001", "$0.0006"]
    assert places_of(world.a.id) == 4


def test_the_owner_changes_the_precision_it_is_audited_and_calls_rated_after_use_it(world, client, login):
    login(client, world.owner_a)
    resp = client.post(URL, data={"call_charge_places": "2"})
    assert resp.status_code == 303 and resp.headers["Location"] == URL
    assert places_of(world.a.id) == 2
    [entry] = audits(world.a.id)
    assert entry.actor_id == world.owner_a.id and entry.details == {"old": 4, "new": 2}
    assert "call charge precision 4 → 2 decimal places" in client.get(URL).get_data(as_text=True)
    # saving the same value again changes nothing and records nothing
    client.post(URL, data={"call_charge_places": "2"})
    assert "Nothing changed." in client.get(URL).get_data(as_text=True) and len(audits(world.a.id)) == 1

    account = world.account_a
    give_plan(account, make_sheet(world.a, [("44", "GB", "0.005", "0", 1, 1)]))
    with tenant_scope(world.a.id):
        store_rated_calls([CallRecord(account.id, "pbxs", "s.1", "442071234567", datetime(2025, 6, 1, 9), 12)])
        db.session.commit()
    client.post(URL, data={"call_charge_places": "4"})
    with tenant_scope(world.a.id):
        store_rated_calls([CallRecord(account.id, "pbxs", "s.2", "442071234567", datetime(2025, 6, 1, 9, 1), 12)])
        db.session.commit()
    with unscoped():
        from app.calls.models import Call
        costs = db.session.execute(select(Call.uniqueid, Call.cost).where(Call.server == "pbxs")
                                   .order_by(Call.uniqueid)).all()
    assert [(u, c) for u, c in costs] == [("s.1", Decimal("0.00")), ("s.2", Decimal("0.0010"))]


@pytest.mark.parametrize("value", ["1", "5", "0", "abc", "", "2.5", "-3", "99999999999"])
def test_a_precision_outside_two_to_four_is_refused_next_to_the_field(world, client, login, value):
    login(client, world.owner_a)
    resp = client.post(URL, data={"call_charge_places": value})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'id="call_charge_places-error"' in html and "Choose 2, 3 or 4 decimal places." in html
    assert places_of(world.a.id) == 4 and audits(world.a.id) == []


def test_staff_and_read_only_logins_see_the_setting_but_cannot_change_it(world, new_client, login, make_login):
    readonly = make_login(world.a, "reseller_readonly")
    for user in (world.staff_a, readonly):
        c = login(new_client(), user)
        page = c.get(URL)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Call charge precision:</strong> 4 decimal places" in html and "<select" not in html
        assert c.post(URL, data={"call_charge_places": "2"}).status_code == 403
    assert places_of(world.a.id) == 4


def test_each_reseller_changes_only_its_own_precision(world, new_client, login):
    login(new_client(), world.owner_b).post(URL, data={"call_charge_places": "3"})
    assert (places_of(world.a.id), places_of(world.b.id), places_of(world.a_sub.id)) == (4, 3, 4)


def test_transactions_show_ledger_amounts_and_balances_with_the_decimals_they_have(world, new_client, login):
    account = world.account_a                                        # credit 10.00
    with tenant_scope(world.a.id):
        ledger.post(account.id, Decimal("-0.0283"), "call", "call:t1", description="Call to 44…, 5 s", places=4)
        ledger.post(account.id, Decimal("-0.0100"), "call", "call:t2", description="Call to 44…, 6 s", places=4)
        db.session.commit()
    owner = login(new_client(), world.owner_a)
    page = owner.get(f"/reseller/accounts/{account.id}").get_data(as_text=True)
    assert "-$0.0283" in page and "$9.9717" in page and "$9.9617" in page and "-$0.01<" in page
    customer = login(new_client(), world.customer_a)
    page = customer.get("/portal/transactions").get_data(as_text=True)
    assert "balance now $9.9617" in page and "-$0.0283" in page and "$9.9717" in page and "$10.00" in page
    # the accounts list keeps the currency's formatting
    listing = owner.get("/reseller/accounts").get_data(as_text=True)
    assert "$9.96" in listing and "$9.9617" not in listing


def test_a_change_wakes_the_watchers_for_the_resellers_accounts_with_live_calls(world, monkeypatch):
    """Deadlines of running calls are recomputed at once with the new precision: the change
    announces the reseller's accounts that have live calls (and no other reseller's)."""
    from app.calls import in_use, live
    from app.resellers.operations import set_call_charge_places

    live_counts = {world.account_a.account_number: 2, world.account_b.account_number: 1}
    monkeypatch.setattr(in_use, "accounts_in_use", lambda: live_counts)
    published = []
    monkeypatch.setattr(live, "announce", published.append)
    with tenant_scope(world.a.id):
        tenant = db.session.get(Tenant, world.a.id)
        assert set_call_charge_places(tenant, 3) is True
        assert set_call_charge_places(tenant, 3) is False            # unchanged: nothing announced again
        db.session.commit()
    assert published == [world.account_a.account_number]


def test_a_reset_lands_exactly_on_the_typed_amount_with_sub_cent_charges_in_the_balance(world, new_client, login):
    """10.00 less a 0.0283 call is 9.9717: a reset to 0 posts -9.9717 (not -9.97, which would
    leave 0.0017 and block closing the account), and the account can then be closed."""
    account = world.account_a
    with tenant_scope(world.a.id):
        ledger.post(account.id, Decimal("-0.0283"), "call", "call:r1", places=4)
        db.session.commit()
    owner = login(new_client(), world.owner_a)
    url = f"/reseller/accounts/{account.id}"
    refused = owner.post(url + "/delete", data={"confirm": "1", "reason": "moving away"},
                         follow_redirects=True).get_data(as_text=True)
    assert "The balance is $9.9717" in refused
    assert owner.post(url + "/balance", data={"action": "reset", "amount": "0", "reason": "closing",
                                              "nonce": "r"}).status_code == 303
    with unscoped():
        last = db.session.execute(select(ledger.LedgerEntry.amount, ledger.LedgerEntry.balance_after)
                                  .where(ledger.LedgerEntry.account_id == account.id)
                                  .order_by(ledger.LedgerEntry.id.desc())).first()
    assert tuple(last) == (Decimal("-9.9717"), Decimal("0"))
    assert owner.post(url + "/delete", data={"confirm": "1", "reason": "moving away"}).status_code == 303
    db.session.rollback()
    with unscoped():
        from app.accounts.models import Account
        assert db.session.execute(select(Account.status).where(Account.id == account.id)).scalar_one() == "closed"
        assert ledger.balance_mismatches() == []
