"""Small things a new user saw (issue 14, point 8): a favicon, an audit log that names its
records, and a welcome letter that tells how to register a phone."""
from sqlalchemy import select

from app.extensions import db
from app.notifications.models import Notification
from app.notifications.outbox import welcome_letter
from tenants.scope import unscoped

from onboarding_support import onboard_account


def test_every_page_links_a_favicon_and_favicon_ico_answers(world, new_client, login):
    page = login(new_client(), world.owner_a).get("/reseller/").get_data(as_text=True)
    assert 'rel="icon"' in page and "favicon.svg" in page
    resp = new_client().get("/favicon.ico")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and b"<svg" in resp.data


def test_the_audit_log_names_records(world, new_client, login):
    account_id = onboard_account(world.a, name="Harbour Cafe")
    admin = login(new_client(), world.admin)
    with unscoped():
        from app.accounts.models import Account
        number = db.session.execute(select(Account.account_number).where(Account.id == account_id)).scalar_one()
    html = admin.get("/admin/audit?action=account.").get_data(as_text=True)
    assert f"Account Harbour Cafe ({number})" in html
    assert f"Account {account_id}<" not in html


def test_the_welcome_letter_says_where_and_how_to_register_a_phone(world, new_client, login):
    admin = login(new_client(), world.admin)
    resp = admin.post("/admin/settings", data={"account_number_length": "10", "pin_length": "6",
                                               "base_extension": "1000", "sip_server": "sip.acme-voice.net",
                                               "sip_port": "5061"})
    assert resp.status_code == 303
    bad = admin.post("/admin/settings", data={"account_number_length": "10", "pin_length": "6",
                                              "base_extension": "1000", "sip_server": "not a host!",
                                              "sip_port": "70000"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Choose a port from 1 to 65535." in html
    account_id = onboard_account(world.a, name="Harbour Cafe", users=1)
    with unscoped():
        from app.accounts.models import Account
        account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        welcome_letter(account)
        db.session.commit()
        body = db.session.execute(select(Notification.body).where(Notification.account_id == account_id,
                                                                  Notification.kind == "welcome")
                                  .order_by(Notification.id.desc())).scalars().first()
    assert "SIP server (registrar, domain): sip.acme-voice.net" in body and "Port:                           5061" in body
    assert "SIP username" in body and "Registering a phone" in body


def test_a_sip_server_that_is_not_a_host_name_is_refused_next_to_the_field(world, new_client, login):
    admin = login(new_client(), world.admin)
    resp = admin.post("/admin/settings", data={"account_number_length": "10", "pin_length": "6",
                                               "base_extension": "1000", "sip_server": "not a host!"})
    assert resp.status_code == 422 and "Enter a host name or IP address, e.g. sip.example.net." in resp.get_data(as_text=True)
