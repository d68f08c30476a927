"""An account's email is its portal login: the edit refuses another login's email as the wizard
does (and moves the account's own login with it); reseller names are unique among siblings.
Both backed by the database, both race-tested on PostgreSQL."""
import threading

from sqlalchemy import select

from app.accounts.models import Account
from app.accounts.operations import update_account
from app.conflicts import FieldError
from app.extensions import db
from app.logins.models import User
from app.resellers.operations import TenantError, create_tenant
from tenants.models import Tenant
from tenants.scope import unscoped

from onboarding_support import onboard_account
from test_account_page import URL, _edit_data  # noqa: F401  (the page helpers)


def _login_of(account_id):
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(User.email).where(User.account_id == account_id)).scalars().all()


def test_the_account_edit_refuses_another_login_s_email_next_to_the_field(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    acct = onboard_account(world.a, name="Quay Dental", email="admin@quay.example")
    onboard_account(world.a, name="Pier Cafe", email="admin@pier.example")
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    for taken in ("admin@pier.example", "ADMIN@PIER.EXAMPLE", world.owner_a.email):
        resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(page, email=taken))
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and "already the portal login of another account or user" in html
        assert 'id="email-error"' in html or "field-error" in html
    assert _login_of(acct) == ["admin@quay.example"]             # nothing written


def test_a_new_email_moves_the_account_s_portal_login_with_it(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    acct = onboard_account(world.a, name="Quay Dental", email="admin@quay.example")
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(page, email="Office@Quay.example"))
    assert resp.status_code == 303
    assert _login_of(acct) == ["office@quay.example"]


def test_two_edits_racing_for_one_email_save_one_and_refuse_the_other(world):
    first = onboard_account(world.a, name="Quay Dental", email="admin@quay.example")
    second = onboard_account(world.a, name="Pier Cafe", email="admin@pier.example")
    from flask import current_app
    app = current_app._get_current_object()
    barrier, outcomes = threading.Barrier(2), {}

    def edit(account_id):
        with app.app_context(), unscoped():
            account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
            try:
                barrier.wait(5)   # both have passed the check before either flushes
                update_account(account, version=account.version, values={"email": "shared@race.example"})
                db.session.commit()
                outcomes[account_id] = "saved"
            except FieldError as e:
                db.session.rollback()
                outcomes[account_id] = (e.field, e.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=edit, args=(a,)) for a in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(map(str, outcomes.values())) == sorted(["saved", str(("email", "This email is already used by another login."))])
    with unscoped():
        assert len(db.session.execute(select(User.id).where(User.email == "shared@race.example")).all()) == 1


def test_reseller_names_are_unique_among_siblings_whatever_the_case(world, new_client, login):
    admin = login(new_client(), world.admin)
    with unscoped():
        existing = db.session.execute(select(Tenant).where(Tenant.id == world.a.id)).scalar_one()
        parent_id, name = existing.parent_id, existing.name
    resp = admin.post("/admin/resellers/new", data={"name": name.upper(), "slug": "another-one", "email": "x@y.example",
                                                    "currency": "USD", "base_extension": "1000",
                                                    "parent_id": str(parent_id)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Another reseller under the same parent already has this name." in html
    with unscoped():
        assert db.session.execute(select(Tenant.id).where(Tenant.slug == "another-one")).first() is None
        # under another parent the same name is fine
        child = create_tenant(name=name, slug="same-name-child", parent_id=world.a.id)
        db.session.commit()
        assert child.parent_id == world.a.id


def test_two_resellers_created_at_once_with_one_name_give_one_reseller(world):
    from flask import current_app
    app = current_app._get_current_object()
    with unscoped():
        parent_id = db.session.execute(select(Tenant.id).where(Tenant.parent_id.is_(None))).scalar_one()
    barrier, outcomes = threading.Barrier(2), []

    def create(slug):
        with app.app_context(), unscoped():
            try:
                barrier.wait(5)
                create_tenant(name="Twin Telecom", slug=slug, parent_id=parent_id)
                db.session.commit()
                outcomes.append("created")
            except TenantError as e:
                db.session.rollback()
                outcomes.append((e.field, str(e)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=create, args=(s,)) for s in ("twin-a", "twin-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(map(str, outcomes)) == sorted(["created", str(("name", "Another reseller under the same parent "
                                                                    "already has this name."))])
