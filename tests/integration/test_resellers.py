"""Platform admin manages resellers and logins; a reseller owner adds staff and sub-resellers."""
from sqlalchemy import func, select

from app.audit import AuditEntry
from app.extensions import db
from app.logins.models import User
from tenants import Tenant
from tenants.scope import unscoped


def test_the_admin_creates_a_reseller_under_the_platform(world, client, login):
    login(client, world.admin)
    resp = client.post("/admin/resellers/new", data={
        "name": "Cobalt Calls", "slug": "cobalt", "parent_id": world.platform.id,
        "email": "sales@cobalt.example", "currency": "GBP", "base_extension": 4000})
    assert resp.status_code == 302
    with unscoped():
        tenant = db.session.execute(select(Tenant).where(Tenant.slug == "cobalt")).scalar_one()
        assert tenant.currency == "GBP" and tenant.parent_id == world.platform.id
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "reseller.created", AuditEntry.object_id == tenant.id)) == 1


def test_a_taken_short_name_is_reported_next_to_the_field_and_nothing_is_written(world, client, login):
    login(client, world.admin)
    with unscoped():
        before = db.session.scalar(select(func.count()).select_from(Tenant))
    resp = client.post("/admin/resellers/new", data={
        "name": "Copy", "slug": world.a.slug, "parent_id": world.platform.id,
        "email": "x@copy.example", "currency": "USD", "base_extension": 1000})
    assert resp.status_code == 422
    assert b"already taken" in resp.data
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == before


def test_bad_reseller_input_gets_field_messages(world, client, login):
    login(client, world.admin)
    resp = client.post("/admin/resellers/new", data={"name": "", "slug": "Bad Slug!", "parent_id": world.platform.id,
                                                     "email": "not-an-email", "currency": "USD", "base_extension": "x"})
    assert resp.status_code == 422
    assert resp.data.count(b"field-error") >= 3


def test_the_admin_suspends_and_reactivates_a_reseller(world, client, login):
    login(client, world.admin)
    client.post(f"/admin/resellers/{world.b.id}/status", data={"action": "suspend"})
    with unscoped():
        assert db.session.scalar(select(Tenant.status).where(Tenant.id == world.b.id)) == "suspended"
    client.post(f"/admin/resellers/{world.b.id}/status", data={"action": "activate"})
    with unscoped():
        assert db.session.scalar(select(Tenant.status).where(Tenant.id == world.b.id)) == "active"


def test_the_admin_edits_a_reseller(world, client, login):
    login(client, world.admin)
    resp = client.post(f"/admin/resellers/{world.b.id}/edit", data={
        "name": "B Renamed", "email": "b@b.example", "currency": "USD", "base_extension": 7000})
    assert resp.status_code == 302
    with unscoped():
        assert db.session.scalar(select(Tenant.name).where(Tenant.id == world.b.id)) == "B Renamed"


def test_the_admin_adds_an_owner_login_to_a_reseller(world, client, login):
    login(client, world.admin)
    resp = client.post(f"/admin/resellers/{world.b.id}/logins", data={
        "name": "New Owner", "email": "New.Owner@B.example", "role": "reseller_owner", "password": "long-enough-1"})
    assert resp.status_code == 302
    with unscoped():
        user = db.session.execute(select(User).where(User.email == "new.owner@b.example")).scalar_one()
        assert user.tenant_id == world.b.id and user.role == "reseller_owner"


def test_a_duplicate_login_email_is_refused_with_a_message(world, client, login):
    login(client, world.admin)
    resp = client.post(f"/admin/resellers/{world.b.id}/logins", data={
        "name": "Dup", "email": world.owner_a.email, "role": "reseller_staff", "password": "long-enough-1"})
    assert resp.status_code == 422
    assert b"already used" in resp.data


def test_a_reseller_owner_adds_staff_but_staff_cannot(world, client, new_client, login):
    login(client, world.owner_a)
    resp = client.post("/reseller/staff", data={"name": "Temp", "email": "temp@a.example",
                                                "role": "reseller_staff", "password": "long-enough-1"})
    assert resp.status_code == 302
    staff = login(new_client(), world.staff_a)
    resp = staff.post("/reseller/staff", data={"name": "Temp2", "email": "temp2@a.example",
                                               "role": "reseller_staff", "password": "long-enough-1"})
    assert resp.status_code == 403
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(User).where(User.email.like("temp%"))) == 1


def test_a_reseller_owner_creates_a_sub_reseller_only_under_its_own_tree(world, client, login):
    login(client, world.owner_a)
    resp = client.post("/reseller/resellers", data={"name": "A South", "slug": "a-south", "parent_id": world.a.id,
                                                    "email": "s@a.example", "currency": "USD", "base_extension": 6000})
    assert resp.status_code == 302
    resp = client.post("/reseller/resellers", data={"name": "Hijack", "slug": "hijack", "parent_id": world.b.id,
                                                    "email": "h@a.example", "currency": "USD", "base_extension": 6000})
    assert resp.status_code == 422  # B is not a choice for A
    with unscoped():
        south = db.session.execute(select(Tenant).where(Tenant.slug == "a-south")).scalar_one()
        assert south.parent_id == world.a.id
        assert db.session.execute(select(Tenant).where(Tenant.slug == "hijack")).first() is None


def test_reseller_pages_list_only_the_resellers_own_tree(world, client, login):
    login(client, world.owner_a)
    page = client.get("/reseller/resellers").data
    assert world.a_sub.name.encode() in page and world.b.name.encode() not in page


def test_the_audit_log_shows_who_did_what_from_which_login(world, client, login):
    login(client, world.admin)
    client.post(f"/admin/resellers/{world.b.id}/status", data={"action": "suspend"})
    page = client.get("/admin/audit?action=reseller.").data.decode()
    assert "reseller.suspended" in page and world.admin.email in page
    assert "reseller.suspended" not in client.get("/admin/audit?action=login.").data.decode()
