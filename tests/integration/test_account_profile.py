"""Account details beyond the account row: owner, agent and commission, contact, groups."""
from decimal import Decimal

from sqlalchemy import select

from app.accounts.details import AccountDetails, commission_report
from app.extensions import db
from app.ledger import post
from tenants.scope import unscoped


def _details(account_id):
    db.session.expire_all()
    with unscoped():
        return db.session.execute(select(AccountDetails).where(AccountDetails.account_id == account_id)
                                  ).scalar_one_or_none()


def _group(client, name):
    return client.post("/reseller/groups", data={"name": name})


def test_the_account_page_shows_the_owner_and_saves_agent_contact_and_group(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    assert _group(owner, "Hotels").status_code == 303
    assert _group(owner, "hotels").status_code == 422          # one name per reseller, any case
    page = owner.get(f"/reseller/accounts/{world.account_a.id}/profile").get_data(as_text=True)
    assert "Reseller A" in page and "Hotels" in page and world.staff_a.name in page
    assert _details(world.account_a.id) is None
    from app.accounts.details import CustomerGroup
    with unscoped():
        hotels = db.session.execute(select(CustomerGroup)).scalar_one()
    resp = owner.post(f"/reseller/accounts/{world.account_a.id}/profile", data={
        "agent_id": world.staff_a.id, "agent_commission_rate": "7.5", "group_id": hotels.id,
        "website": "https://hotel.example", "phone2": "+44 20 7946 0000", "fax": "+44 20 7946 0001",
        "low_balance_email": "Accounts@Hotel.example"})
    assert resp.status_code == 303
    row = _details(world.account_a.id)
    assert (row.agent_id, row.agent_commission_rate, row.group_id, row.low_balance_email) == (
        world.staff_a.id, Decimal("7.500"), hotels.id, "accounts@hotel.example")
    groups = owner.get("/reseller/groups").get_data(as_text=True)
    assert "Hotels" in groups


def test_bad_details_answer_422_next_to_the_field_and_change_nothing(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    url = f"/reseller/accounts/{world.account_a.id}/profile"
    for data, message in (
        ({"agent_id": world.owner_b.id}, "Choose a login of this account"),     # another reseller's login
        ({"agent_commission_rate": "abc"}, "Enter a percentage"),
        ({"agent_commission_rate": "150"}, "between 0 and 100"),
        ({"low_balance_email": "not-an-email"}, "Invalid email"),
    ):
        resp = owner.post(url, data={"agent_id": 0, "group_id": 0, **data})
        assert resp.status_code == 422, data
        assert message in resp.get_data(as_text=True), data
    assert _details(world.account_a.id) is None


def test_commission_report_per_agent_and_period(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    owner.post(f"/reseller/accounts/{world.account_a.id}/profile",
               data={"agent_id": world.staff_a.id, "agent_commission_rate": "10", "group_id": 0})
    with unscoped():
        post(world.account_a.id, Decimal("-12.34"), "call", "test:call:1")
        post(world.account_a.id, Decimal("-5"), "user_charge", "test:users:1")
        post(world.account_a.id, Decimal("50"), "payment", "test:payment:1")   # not commissionable
        db.session.commit()
    from datetime import date
    with unscoped():
        rows = commission_report(world.staff_a.id, date.today(), date.today())
    assert len(rows) == 1
    assert (rows[0]["charged"], rows[0]["commission"]) == (Decimal("17.34"), Decimal("1.73"))
    page = owner.get(f"/reseller/reports/commission?agent={world.staff_a.id}").get_data(as_text=True)
    assert "$17.34" in page and "$1.73" in page
    assert owner.get("/reseller/reports/commission?agent=x&from=bogus").status_code == 422


def test_a_group_filters_the_accounts_list_and_feeds_its_bulk_actions(world, new_client, login):
    from app.accounts.details import CustomerGroup
    from app.accounts.models import Account

    owner = login(new_client(), world.owner_a)
    _group(owner, "Hotels")
    with unscoped():
        hotels = db.session.execute(select(CustomerGroup)).scalar_one()
    owner.post(f"/reseller/accounts/{world.account_a.id}/profile", data={"agent_id": 0, "group_id": hotels.id})
    page = owner.get(f"/reseller/accounts?group={hotels.id}").get_data(as_text=True)
    assert world.account_a.account_number in page and world.account_a2.account_number not in page
    assert 'option value="%d" selected' % hotels.id in page
    assert "Unknown group ignored" in owner.get("/reseller/accounts?group=x").get_data(as_text=True)
    # Another reseller's filter by this group finds nothing of A's.
    other = login(new_client(), world.owner_b)
    assert world.account_a.account_number not in other.get(f"/reseller/accounts?group={hotels.id}").get_data(as_text=True)
    # The ids the filtered list shows are what a bulk action takes.
    owner.post("/reseller/accounts/bulk", data={"action": "deactivate", "ids": [world.account_a.id],
                                                "reason": "moved away", "confirm": "1"})
    db.session.expire_all()
    with unscoped():
        statuses = dict(db.session.execute(select(Account.id, Account.status)).all())
    assert statuses[world.account_a.id] == "disabled" and statuses[world.account_a2.id] == "active"
