"""The customer portal's users, numbers, service plan and password pages."""
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.billing.orders import Order
from app.extensions import db
from app.ledger import balance_mismatches
from app.notifications.models import Notification
from app.logins.models import User
from provisioning.models import Extension
from tenants.scope import unscoped

from onboarding_support import make_numbers, onboard_account, row_counts


@pytest.fixture
def setup(world):
    number_id = make_numbers(world.a, 1, setup="1.00", monthly="3.00")[0]
    acct = onboard_account(world.a, name="Harbour Cafe", email="boss@harbour.example", users=2,
                           cost_per_user="10.00", initial_credit="100.00", number_ids=[number_id],
                           countries=[("GB", 100), ("FR", 0)], portal_password="customer-pass-1")
    with unscoped():
        user = db.session.execute(select(User).where(User.account_id == acct)).scalar_one()
    return acct, user


@pytest.fixture
def customer(setup, new_client, login):
    return login(new_client(), setup[1])


def _balance(acct):
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(Account.balance).where(Account.id == acct)).scalar_one()


def test_the_users_page_lists_extensions_with_their_sip_credentials(setup, customer):
    acct, _ = setup
    html = customer.get("/portal/users").get_data(as_text=True)
    with unscoped():
        exts = db.session.execute(select(Extension).where(Extension.account_id == acct)).scalars().all()
    for e in exts:
        assert e.sip_username in html and e.sip_secret in html
    assert "not registered" in html and "+44 20 7946" in html


def test_the_customer_sees_the_charge_before_adding_users_and_it_is_taken_only_on_accept(setup, customer):
    acct, _ = setup
    before, start = row_counts(), _balance(acct)
    resp = customer.post("/portal/users/preview", data={"users": "3"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Charged now" in html and "Accept and pay" in html
    assert row_counts() == before and _balance(acct) == start
    charge = re.search(r'name="accepted_charge" value="([^"]+)"', html).group(1)
    resp = customer.post("/portal/users/apply", data={"users": "3", "accepted_from": "2", "accepted_charge": charge})
    assert resp.status_code == 303
    assert _balance(acct) == start - Decimal(charge)
    with unscoped():
        assert db.session.query(Extension).filter(Extension.account_id == acct).count() == 3
        assert balance_mismatches() == []


def test_an_htmx_preview_gets_the_partial(setup, customer):
    resp = customer.post("/portal/users/preview", data={"users": "3"}, headers={"HX-Request": "true"})
    assert resp.status_code == 200 and "<html" not in resp.get_data(as_text=True)


def test_bad_user_counts_get_a_clear_message(setup, customer):
    for value, message in (("0", "From 1 to 1,000 users."), ("", "Enter the number of users."),
                           ("2", "already has 2 users")):
        resp = customer.post("/portal/users/preview", data={"users": value})
        assert resp.status_code == 422 and message in resp.get_data(as_text=True), value


def test_a_prepaid_customer_without_credit_cannot_add_users(world, new_client, login):
    acct = onboard_account(world.a, users=1, cost_per_user="500.00", initial_credit="500.00")
    with unscoped():
        user = db.session.execute(select(User).where(User.account_id == acct)).scalar_one()
    client = login(new_client(), user)
    html = client.post("/portal/users/preview", data={"users": "5"}).get_data(as_text=True)
    charge = re.search(r'name="accepted_charge" value="([^"]+)"', html).group(1)
    before = row_counts()
    resp = client.post("/portal/users/apply", data={"users": "5", "accepted_from": "1", "accepted_charge": charge})
    assert resp.status_code == 422 and "Add credit first." in resp.get_data(as_text=True)
    assert row_counts() == before


def test_the_plan_page_shows_what_the_account_pays_each_month(setup, customer):
    html = customer.get("/portal/plan").get_data(as_text=True)
    assert "Users" in html and "$20.00" in html               # 2 x 10
    assert "$3.00" in html and "$23.00" in html                # the number, the total
    assert "United Kingdom" in html and "France" in html


def test_the_numbers_page_and_a_number_request(setup, customer):
    acct, _ = setup
    html = customer.get("/portal/numbers").get_data(as_text=True)
    assert "+44 20 7946" in html
    assert customer.post("/portal/numbers", data={"country": ""}).status_code == 422
    assert customer.post("/portal/numbers", data={"country": "FR", "note": "Paris"}).status_code == 303
    with unscoped():
        order = db.session.execute(select(Order).where(Order.account_id == acct, Order.status == "pending")).scalar_one()
        assert "France" in order.description


def test_a_customer_never_sees_a_sibling_accounts_numbers(world, setup, new_client, login):
    sibling = onboard_account(world.a, number_ids=make_numbers(world.a, 1))
    with unscoped():
        from app.numbers.models import Number
        sibling_number = db.session.execute(select(Number.number).where(Number.account_id == sibling)).scalar_one()
    client = login(new_client(), world.customer_a)
    for url in ("/portal/numbers", "/portal/users", "/portal/plan"):
        assert sibling_number[-4:] not in client.get(url).get_data(as_text=True), url


def test_changing_the_password_needs_the_current_one_and_tells_the_account(setup, customer, new_client):
    acct, user = setup
    resp = customer.post("/portal/password", data={"current": "wrong", "password": "new-pass-123",
                                                   "confirm": "new-pass-123"})
    assert resp.status_code == 422 and "This is not your current password." in resp.get_data(as_text=True)
    resp = customer.post("/portal/password", data={"current": "customer-pass-1", "password": "new-pass-123",
                                                   "confirm": "other-pass-123"})
    assert resp.status_code == 422 and "The two passwords are not the same." in resp.get_data(as_text=True)
    resp = customer.post("/portal/password", data={"current": "customer-pass-1", "password": "new-pass-123",
                                                   "confirm": "new-pass-123"})
    assert resp.status_code == 303
    assert new_client().post("/portal/login", data={"email": "boss@harbour.example",
                                                    "password": "new-pass-123"}).status_code == 302
    with unscoped():
        note = db.session.execute(select(Notification).where(Notification.kind == "password_changed")).scalar_one()
        assert note.to_email == "boss@harbour.example"


@pytest.mark.parametrize("url", ["/portal/users", "/portal/numbers", "/portal/plan", "/portal/password"])
@pytest.mark.parametrize("who", ["owner_a", "staff_a", "admin"])
def test_other_portals_get_403(world, new_client, login, url, who):
    assert login(new_client(), getattr(world, who)).get(url).status_code == 403


@pytest.mark.parametrize("url", ["/portal/users", "/portal/numbers", "/portal/plan", "/portal/password"])
def test_anonymous_visitors_go_to_the_portal_login(client, url):
    resp = client.get(url)
    assert resp.status_code == 302 and "/portal/login" in resp.headers["Location"]
