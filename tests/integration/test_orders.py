"""The reseller's orders page (issue 20, point 4): every pending order across its accounts in
one list, processed from there, and an email to the reseller when a customer's order arrives."""
from sqlalchemy import select

from app.billing.orders import Order, record_order
from app.extensions import db
from app.notifications.models import Notification
from tenants.models import Tenant
from tenants.scope import unscoped


def _order(account, description, status="pending", kind="number"):
    with unscoped():
        o = Order(tenant_id=account.tenant_id, account_id=account.id, kind=kind, description=description,
                  status=status)
        db.session.add(o)
        db.session.commit()
        return o.id


def test_the_list_shows_pending_orders_of_the_subtree_and_never_another_resellers(world, new_client, login):
    _order(world.account_a, "Number requested in France")
    _order(world.account_a_sub, "Number requested in Spain")
    _order(world.account_a2, "Users 2 → 1", status="processed", kind="users")
    _order(world.account_b, "Number requested in Italy")
    owner = login(new_client(), world.owner_a)
    html = owner.get("/reseller/orders").get_data(as_text=True)
    assert "France" in html and "Spain" in html          # its own and its sub-reseller's
    assert "Italy" not in html                            # another reseller's
    assert "Users 2 → 1" not in html                      # processed: not pending
    assert 'aria-label="2 pending"' in html               # the navigation's count
    html = owner.get("/reseller/orders?status=all&kind=users").get_data(as_text=True)
    assert "Users 2 → 1" in html and "France" not in html
    sub = login(new_client(), world.owner_a_sub).get("/reseller/orders").get_data(as_text=True)
    assert "Spain" in sub and "France" not in sub


def test_an_unknown_filter_says_so_instead_of_failing(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    resp = owner.get("/reseller/orders?status=lost&kind=pizza")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Unknown status ignored; showing pending orders." in html
    assert "Unknown kind ignored; showing every kind." in html


def test_processing_from_the_list_once_and_another_resellers_order_is_404(world, new_client, login):
    mine, theirs = _order(world.account_a, "Number requested in France"), _order(world.account_b, "Italy")
    owner = login(new_client(), world.owner_a)
    html = owner.get("/reseller/orders").get_data(as_text=True)
    assert f"/reseller/orders/{mine}/process" in html
    resp = owner.post(f"/reseller/orders/{mine}/process", follow_redirects=True)
    assert resp.status_code == 200 and "marked as processed" in resp.get_data(as_text=True)
    again = owner.post(f"/reseller/orders/{mine}/process", follow_redirects=True).get_data(as_text=True)
    assert "This order is already processed." in again
    assert owner.post(f"/reseller/orders/{theirs}/process").status_code == 404
    with unscoped():
        statuses = dict(db.session.execute(select(Order.id, Order.status)).all())
    assert statuses == {mine: "processed", theirs: "pending"}


def test_a_read_only_login_sees_the_list_but_cannot_process(world, new_client, login, make_login):
    order = _order(world.account_a, "Number requested in France")
    reader = login(new_client(), make_login(world.a, "reseller_readonly"))
    html = reader.get("/reseller/orders").get_data(as_text=True)
    assert "France" in html and f"/reseller/orders/{order}/process" not in html
    assert reader.post(f"/reseller/orders/{order}/process").status_code == 403


def test_a_customers_number_request_emails_the_reseller_once(world, new_client, login):
    with unscoped():
        db.session.get(Tenant, world.a.id).email = "orders@reseller-a.example"
        db.session.commit()
    customer = login(new_client(), world.customer_a)
    assert customer.post("/portal/numbers", data={"country": "FR", "note": "Paris"}).status_code == 303
    with unscoped():
        sent = db.session.execute(select(Notification).where(Notification.kind == "order_arrived")).scalars().all()
    assert len(sent) == 1
    assert sent[0].to_email == "orders@reseller-a.example"
    assert world.account_a.account_number in sent[0].subject and "France" in sent[0].body


def test_an_order_the_reseller_records_itself_sends_no_email(world, app, new_client, login):
    with unscoped():
        db.session.get(Tenant, world.a.id).email = "orders@reseller-a.example"
        db.session.commit()
    owner = login(new_client(), world.owner_a)
    with app.test_request_context():
        from flask_login import login_user

        login_user(world.owner_a)
        with unscoped():
            record_order(world.account_a, "service", "Set up call recording")
            db.session.commit()
    assert "Set up call recording" in owner.get("/reseller/orders").get_data(as_text=True)
    with unscoped():
        assert db.session.execute(select(Notification).where(Notification.kind == "order_arrived")).first() is None
