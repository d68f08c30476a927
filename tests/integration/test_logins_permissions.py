"""Creating the new logins through their pages, and what those logins then see."""
from sqlalchemy import select

from app.audit import AuditEntry
from app.extensions import db
from app.logins.models import User
from tenants.scope import unscoped
from tests.conftest import PASSWORD


def _login_row(email):
    db.session.expire_all()   # the rows as the requests left them
    with unscoped():
        return db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def test_platform_admin_adds_a_sub_admin_who_then_signs_in_without_the_settings_link(world, new_client, login):
    admin = login(new_client(), world.admin)
    resp = admin.post("/admin/admins", data={"name": "Sue Sub", "email": "Sue@Platform.example",
                                             "role": "platform_subadmin", "password": "long-enough-1"})
    assert resp.status_code == 303
    sub = _login_row("sue@platform.example")
    assert sub.role == "platform_subadmin" and sub.portal == "admin"
    client = new_client()
    resp = client.post("/admin/login", data={"email": "sue@platform.example", "password": "long-enough-1"})
    assert resp.status_code == 302
    page = client.get("/admin/").get_data(as_text=True)
    assert "Resellers" in page and "/admin/settings" not in page and "/admin/admins" not in page
    assert client.get("/admin/settings").status_code == 403
    assert client.post("/admin/admins", data={"name": "x", "email": "x@y.example", "role": "platform_admin",
                                              "password": "long-enough-1"}).status_code == 403
    assert _login_row("x@y.example") is None


def test_bad_admin_form_answers_422_next_to_the_field(world, new_client, login):
    admin = login(new_client(), world.admin)
    resp = admin.post("/admin/admins", data={"name": "Dup", "email": world.owner_a.email,
                                             "role": "platform_admin", "password": "long-enough-1"})
    assert resp.status_code == 422
    assert "already used by another login" in resp.get_data(as_text=True)


def test_reseller_owner_adds_a_read_only_login_that_can_look_but_not_touch(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    resp = owner.post("/reseller/staff", data={"name": "Rita Read", "email": "rita@a.example",
                                               "role": "reseller_readonly", "password": "long-enough-1"})
    assert resp.status_code == 302
    rita = _login_row("rita@a.example")
    assert rita.role == "reseller_readonly"
    client = login(new_client(), rita)
    assert client.get(f"/reseller/accounts/{world.account_a.id}").status_code == 200
    resp = client.post(f"/reseller/accounts/{world.account_a.id}/notes", data={"notes": "changed"})
    assert resp.status_code == 403 and "read-only" in resp.get_data(as_text=True)


def test_account_admin_adds_portal_logins_with_permissions_and_changes_them(world, new_client, login):
    admin = login(new_client(), world.customer_a)
    resp = admin.post("/portal/logins", data={"name": "Bea Books", "email": "bea@customer.example",
                                              "password": "long-enough-1", "permissions": ["transactions"]})
    assert resp.status_code == 303
    bea = _login_row("bea@customer.example")
    assert (bea.role, bea.account_id, bea.permissions) == ("account_user", world.account_a.id, ["transactions"])

    client = new_client()
    assert client.post("/portal/login", data={"email": "bea@customer.example", "password": "long-enough-1"}
                       ).status_code == 302
    page = client.get("/portal/").get_data(as_text=True)
    assert "/portal/transactions" in page and "/portal/per-minute" not in page and "/portal/logins" not in page
    assert client.get("/portal/transactions").status_code == 200
    assert client.get("/portal/per-minute").status_code == 403
    assert client.get("/portal/logins").status_code == 403

    resp = admin.post(f"/portal/logins/{bea.id}/permissions", data={"permissions": ["reports", "bogus"],
                                                                    "active": "1"})
    assert resp.status_code == 303
    assert _login_row("bea@customer.example").permissions == ["reports"]
    assert client.get("/portal/per-minute").status_code == 200
    assert client.get("/portal/transactions").status_code == 403
    with unscoped():
        actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.action == "login.permissions_set")
                                     ).scalars().all()
    assert len(actions) == 2

    # Deactivated: signed out at the next request (Flask-Login refuses inactive logins).
    admin.post(f"/portal/logins/{bea.id}/permissions", data={"permissions": ["reports"]})
    assert _login_row("bea@customer.example").active is False
    assert client.get("/portal/per-minute").status_code == 302


def test_the_account_administrators_permissions_cannot_be_cut(world, new_client, login):
    admin = login(new_client(), world.customer_a)
    resp = admin.post(f"/portal/logins/{world.customer_a.id}/permissions", data={"permissions": []})
    assert resp.status_code == 303
    assert _login_row(world.customer_a.email).permissions is None
    assert admin.get("/portal/logins").status_code == 200


def test_a_portal_login_email_must_be_unique_and_the_password_long(world, new_client, login):
    admin = login(new_client(), world.customer_a)
    resp = admin.post("/portal/logins", data={"name": "X", "email": world.customer_a2.email,
                                              "password": "long-enough-1"})
    assert resp.status_code == 422 and "already used" in resp.get_data(as_text=True)
    resp = admin.post("/portal/logins", data={"name": "X", "email": "short@customer.example", "password": "short"})
    assert resp.status_code == 422 and "at least 8" in resp.get_data(as_text=True)
    assert _login_row("short@customer.example") is None
