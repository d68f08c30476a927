"""The account page's extras (list, add, end) and the owed charges shown in both portals."""
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from tenants.scope import unscoped
from tests.integration.billing_support import account, entries
from tests.integration.onboarding_support import row_counts


def _extras(account_id):
    from app.billing.extras import Extra

    with unscoped():
        return list(db.session.execute(select(Extra).where(Extra.account_id == account_id)).scalars())


def _today():
    from app.billing.schedule import local_date

    return local_date("UTC")


def test_the_owner_adds_an_extra_and_this_period_is_charged_at_once(client, login, world):
    owner = login(client, world.owner_a)
    a = world.account_a.id
    page = owner.get(f"/reseller/accounts/{a}/extras", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No extras." in page and "Add extra" in page and "<html" not in page
    resp = owner.post(f"/reseller/accounts/{a}/extras", data={
        "description": "Monthly support", "amount": "4.50", "period": "monthly",
        "start_date": _today().isoformat(), "end_date": ""})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#extras")
    [extra] = _extras(a)
    assert (extra.description, extra.amount, extra.period, extra.end_date) == ("Monthly support", Decimal("4.50"),
                                                                               "monthly", None)
    key = next(k for k in entries(a) if k.startswith(f"account:{a}:extra:{extra.id}:"))
    assert entries(a)[key] == Decimal("-4.50") and account(a).balance == Decimal("5.50")
    page = owner.get(f"/reseller/accounts/{a}/extras").get_data(as_text=True)
    assert "Monthly support" in page and "4.50" in page
    assert "extras" in owner.get(f"/reseller/accounts/{a}").get_data(as_text=True)


def test_bad_extras_are_refused_next_to_their_field_and_write_nothing(client, login, world):
    owner = login(client, world.owner_a)
    a = world.account_a.id
    today = _today()
    cases = [
        ({"description": "", "amount": "5", "start_date": today.isoformat()}, "Say what the extra is for."),
        ({"description": "Fee", "amount": "abc", "start_date": today.isoformat()}, "is not a number"),
        ({"description": "Fee", "amount": "0", "start_date": today.isoformat()}, "above zero"),
        ({"description": "Fee", "amount": "5", "start_date": ""}, "Enter the first day it is charged."),
        ({"description": "Fee", "amount": "5", "start_date": today.isoformat(),
          "end_date": (today - timedelta(days=1)).isoformat()}, "cannot be before the start date"),
        ({"description": "Fee", "amount": "5", "period": "hourly", "start_date": today.isoformat()}, "Not a valid choice"),
        # 10.00 of credit does not cover 30 a day for the rest of the period.
        ({"description": "Rental", "amount": "30", "period": "daily", "start_date": today.isoformat()},
         "does not cover"),
    ]
    before = row_counts()
    for data, message in cases:
        resp = owner.post(f"/reseller/accounts/{a}/extras", data={"period": "monthly", **data})
        body = resp.get_data(as_text=True)
        assert resp.status_code == 422, data
        assert message in body and "field-error" in body, (data, body[:2000])
    assert row_counts() == before


def test_an_extra_is_ended_and_a_bad_end_date_is_refused(client, login, world):
    owner = login(client, world.owner_a)
    a = world.account_a.id
    start = _today() + timedelta(days=40)       # a later period: nothing charged now
    owner.post(f"/reseller/accounts/{a}/extras", data={"description": "Later", "amount": "2", "period": "weekly",
                                                       "start_date": start.isoformat()})
    [extra] = _extras(a)
    assert account(a).balance == Decimal("10.00")
    resp = owner.post(f"/reseller/accounts/{a}/extras/{extra.id}/end",
                      data={"end_date": (start - timedelta(days=1)).isoformat()})
    assert resp.status_code == 422 and "cannot be before the start date" in resp.get_data(as_text=True)
    assert _extras(a)[0].end_date is None
    resp = owner.post(f"/reseller/accounts/{a}/extras/{extra.id}/end", data={"end_date": ""})
    assert resp.status_code == 422 and "Enter the last day" in resp.get_data(as_text=True)
    end = start + timedelta(days=60)
    resp = owner.post(f"/reseller/accounts/{a}/extras/{extra.id}/end", data={"end_date": end.isoformat()})
    assert resp.status_code == 303
    assert _extras(a)[0].end_date == end


def test_another_resellers_account_or_extra_answers_404_and_read_only_logins_cannot_add(client, login, world,
                                                                                       make_login):
    from app.billing.extras import Extra

    with unscoped():
        x = Extra(tenant_id=world.b.id, account_id=world.account_b.id, description="B's", amount=Decimal("1"),
                  period="monthly", start_date=date(2026, 12, 1))
        db.session.add(x)
        db.session.commit()
        xid = x.id
    owner = login(client, world.owner_a)
    assert owner.get(f"/reseller/accounts/{world.account_b.id}/extras").status_code == 404
    assert owner.post(f"/reseller/accounts/{world.account_a.id}/extras/{xid}/end",
                      data={"end_date": "2027-01-01"}).status_code == 404
    readonly = login(client, make_login(world.a, "reseller_readonly"))
    assert readonly.post(f"/reseller/accounts/{world.account_a.id}/extras",
                         data={"description": "x", "amount": "1", "start_date": "2027-01-01"}).status_code == 403
    page = readonly.get(f"/reseller/accounts/{world.account_a.id}/extras").get_data(as_text=True)
    assert "Add extra" not in page


def test_owed_charges_show_on_the_account_page_and_in_the_portal(client, login, world, new_client):
    from app.billing.cycle import REASON_UNPAID, RecurringCharge
    from tests.integration.billing_support import set_fields

    a = world.account_a.id
    with unscoped():
        db.session.add(RecurringCharge(tenant_id=world.a.id, account_id=a, kind="users", item=0, period="2027-01",
                                       amount=Decimal("15.00"), description="3 users × $5.00, 2027-01",
                                       ledger_key=f"account:{a}:users:2027-01", status="owed"))
        db.session.commit()
    set_fields(a, status="suspended", status_reason=REASON_UNPAID)
    owner = login(client, world.owner_a)
    section = owner.get(f"/reseller/accounts/{a}/extras").get_data(as_text=True)
    assert "Owed recurring charges" in section and "3 users × $5.00, 2027-01" in section and "$15.00" in section
    assert "suspended: unpaid recurring charges" in owner.get(f"/reseller/accounts/{a}").get_data(as_text=True)
    portal = login(new_client(), world.customer_a)
    page = portal.get("/portal/").get_data(as_text=True)
    assert "Recurring charges owed" in page and "3 users × $5.00, 2027-01" in page
    assert "unpaid recurring charges" in page
    other = login(new_client(), world.customer_a2)
    assert "Recurring charges owed" not in other.get("/portal/").get_data(as_text=True)
