"""Platform settings page: account-number length, PIN length, default base extension."""
import pytest
from sqlalchemy import select

from app.accounts.operations import create_account
from app.audit import AuditEntry
from app.extensions import db
from app.settings import PlatformSetting, get_int
from tenants.scope import unscoped

URL = "/admin/settings"
GOOD = {"account_number_length": "12", "pin_length": "8", "base_extension": "5000"}


def stored() -> dict:
    with unscoped():
        return dict(db.session.execute(select(PlatformSetting.key, PlatformSetting.value)).all())


def audits():
    with unscoped():
        return db.session.execute(select(AuditEntry).where(AuditEntry.action == "settings.updated")).scalars().all()


def test_the_page_shows_the_defaults(world, client, login):
    login(client, world.admin)
    resp = client.get(URL)
    assert resp.status_code == 200
    for name, value in (("account_number_length", "10"), ("pin_length", "6"), ("base_extension", "1000")):
        assert f'name="{name}"'.encode() in resp.data and f'value="{value}"'.encode() in resp.data
    assert b'href="/admin/settings"' in resp.data  # in the admin nav


def test_saving_stores_the_values_audits_the_change_and_new_accounts_follow(world, client, login):
    login(client, world.admin)
    resp = client.post(URL, data=GOOD)
    assert resp.status_code == 303 and resp.headers["Location"] == URL
    assert stored() == {"account_number_length": "12", "pin_length": "8", "base_extension": "5000"}
    [entry] = audits()
    assert entry.actor_id == world.admin.id and entry.tenant_id == world.platform.id
    assert entry.details == {"account_number_length": [10, 12], "pin_length": [6, 8],
                             "base_extension": [1000, 5000]}
    page = client.get(URL)
    assert "account-number length 10 → 12".encode() in page.data and b'value="12"' in page.data

    with unscoped():
        account = create_account(tenant_id=world.a.id, name="Long Number", email="l@n.example", with_pin=True)
        db.session.commit()
        assert len(account.account_number) == 12 and len(account.pin) == 8
        assert get_int("base_extension") == 5000


def test_the_new_reseller_forms_start_from_the_default_base_extension(world, client, login, new_client):
    login(client, world.admin)
    client.post(URL, data=GOOD)
    assert b'value="5000"' in client.get("/admin/resellers/new").data
    owner = login(new_client(), world.owner_a)
    assert b'value="5000"' in owner.get("/reseller/resellers").data


def test_saving_the_same_values_changes_nothing_and_writes_no_audit(world, client, login):
    login(client, world.admin)
    client.post(URL, data={"account_number_length": "10", "pin_length": "6", "base_extension": "1000"})
    assert audits() == []
    assert b"Nothing changed." in client.get(URL).data


@pytest.mark.parametrize("field,value,message", [
    ("account_number_length", "7", "Choose a length from 8 to 16."),
    ("account_number_length", "17", "Choose a length from 8 to 16."),
    ("account_number_length", "ten", "Enter a whole number, digits only."),
    ("account_number_length", "10.5", "Enter a whole number, digits only."),
    ("account_number_length", "", "Enter a value."),
    ("pin_length", "3", "Choose a length from 4 to 12."),
    ("pin_length", "13", "Choose a length from 4 to 12."),
    ("base_extension", "99", "Choose a number from 100 to 99999999."),
    ("base_extension", "100000000", "Choose a number from 100 to 99999999."),
    ("base_extension", "-1000", "Choose a number from 100 to 99999999."),
])
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_saved(world, client, login, field, value, message):
    login(client, world.admin)
    resp = client.post(URL, data={**GOOD, field: value})
    assert resp.status_code == 422
    body = resp.data.decode()
    assert message in body
    assert body.count('class="field-error"') == 1           # one message, on that field
    assert f'id="{field}-error"' in body
    assert stored() == {} and audits() == []


def test_a_missing_field_is_refused(world, client, login):
    login(client, world.admin)
    resp = client.post(URL, data={"account_number_length": "12", "pin_length": "8"})
    assert resp.status_code == 422 and b"Enter a value." in resp.data
    assert stored() == {}


@pytest.mark.parametrize("who", ["owner_a", "staff_a", "customer_a"])
def test_other_roles_get_403_and_change_nothing(world, client, login, who):
    login(client, getattr(world, who))
    assert client.get(URL).status_code == 403
    assert client.post(URL, data=GOOD).status_code == 403
    assert stored() == {}


def test_an_anonymous_visitor_is_sent_to_the_admin_login(world, client):
    for resp in (client.get(URL), client.post(URL, data=GOOD)):
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/admin/login")
    assert stored() == {}


def test_the_form_needs_the_csrf_token(app, world, client, login):
    login(client, world.admin)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post(URL, data=GOOD).status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert stored() == {}
