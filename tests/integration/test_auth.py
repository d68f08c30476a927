"""Logins: each portal's form, throttling, roles, suspension, logout, CSRF and cookies."""
from sqlalchemy import select

from app.extensions import db
from app.logins.models import User
from app.resellers.operations import set_status
from tenants.scope import unscoped
from tests.conftest import PASSWORD


def _login(client, portal, email, password=PASSWORD):
    return client.post(f"/{portal}/login", data={"email": email, "password": password})


def test_each_role_logs_in_to_its_own_portal(world, client, new_client):
    for portal, user, home in (("admin", world.admin, "/admin/"), ("reseller", world.owner_a, "/reseller/"),
                               ("portal", world.customer_a, "/portal/")):
        c = new_client()
        resp = _login(c, portal, user.email)
        assert resp.status_code == 302 and resp.headers["Location"] == home
        assert c.get(home).status_code == 200


def test_a_wrong_password_is_refused_with_a_message_next_to_the_field(world, client):
    resp = _login(client, "reseller", world.owner_a.email, "wrong-password")
    assert resp.status_code == 422
    assert b"Email or password is not correct." in resp.data
    assert b'field-error' in resp.data


def test_a_login_is_refused_in_another_portal(world, client):
    resp = _login(client, "admin", world.owner_a.email)
    assert resp.status_code == 422
    assert client.get("/admin/").status_code == 302


def test_repeated_failures_lock_the_login_even_for_the_right_password(app, world, client):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _login(client, "reseller", world.owner_a.email, "nope-nope")
    resp = _login(client, "reseller", world.owner_a.email)
    assert resp.status_code == 422
    assert b"Too many failed attempts" in resp.data
    with unscoped():
        failed, locked_until = db.session.execute(
            select(User.failed_logins, User.locked_until).where(User.id == world.owner_a.id)).one()
        assert failed == app.config["LOGIN_MAX_FAILURES"]
        assert locked_until is not None


def test_a_successful_login_resets_the_failure_count(world, client):
    _login(client, "reseller", world.owner_a.email, "nope-nope")
    assert _login(client, "reseller", world.owner_a.email).status_code == 302
    with unscoped():
        assert db.session.scalar(select(User.failed_logins).where(User.id == world.owner_a.id)) == 0


def test_staff_of_a_suspended_reseller_cannot_log_in_nor_its_sub_resellers(world, client, new_client):
    with unscoped():
        set_status(world.a, "suspended")
        db.session.commit()
    resp = _login(client, "reseller", world.owner_a.email)
    assert b"suspended" in resp.data
    resp = _login(new_client(), "reseller", world.owner_a_sub.email)
    assert b"suspended" in resp.data


def test_logout_ends_the_session(world, client):
    _login(client, "portal", world.customer_a.email)
    assert client.post("/portal/logout").status_code == 302
    assert client.get("/portal/").status_code == 302


def test_the_login_redirects_only_to_local_next_urls(world, client):
    resp = client.post("/reseller/login?next=https://evil.example/x",
                       data={"email": world.owner_a.email, "password": PASSWORD})
    assert resp.headers["Location"] == "/reseller/"
    resp = client.post("/reseller/login?next=/reseller/staff",
                       data={"email": world.owner_a.email, "password": PASSWORD})
    assert resp.headers["Location"] == "/reseller/staff"


def test_forms_refuse_a_post_without_the_csrf_token(app, world, client):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        resp = _login(client, "reseller", world.owner_a.email)
        assert resp.status_code == 400
        assert b"CSRF" in resp.data
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_session_cookies_are_http_only_and_same_site(world, client):
    resp = _login(client, "reseller", world.owner_a.email)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_passwords_are_stored_hashed(world):
    with unscoped():
        stored = db.session.scalar(select(User.password_hash).where(User.id == world.owner_a.id))
    assert PASSWORD not in stored and stored.startswith("pbkdf2:")
