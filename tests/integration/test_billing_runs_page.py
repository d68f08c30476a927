"""Billing runs you can watch (issue 16, point 8): the runs in scope with their counts, a run's
failed accounts with the reason, a reseller starting its own runs (idempotent), the admin seeing
every tenant's."""
from datetime import datetime

from sqlalchemy import select

from app.billing.cycle import ChargeRun, ChargeRunAccount, RecurringCharge
from app.extensions import db
from tenants.scope import unscoped
from tests.integration.billing_support import billed_account
from tests.integration.onboarding_support import run_jobs


def _run(tenant, period, **counts):
    with unscoped():
        run = ChargeRun(tenant_id=tenant.id, period=period, passes=1, started_at=datetime(2026, 12, 1, 0, 5),
                        finished_at=datetime(2026, 12, 1, 0, 6), **counts)
        db.session.add(run)
        db.session.commit()
        return run.id


def test_a_reseller_sees_its_runs_and_not_another_resellers(world, new_client, login):
    mine = _run(world.a, "2026-12", charged=40, owed=2, suspended=1, failed=1)
    _run(world.b, "2026-11", charged=7)
    with unscoped():
        db.session.add(ChargeRunAccount(tenant_id=world.a.id, account_id=world.account_a.id, run_id=mine,
                                        outcome="failed", reason="number 4420 has no monthly price"))
        db.session.commit()
    owner = login(new_client(), world.owner_a)
    html = owner.get("/reseller/billing-runs").get_data(as_text=True)
    assert "2026-12" in html and "2026-11" not in html and ">40<" in html
    detail = owner.get(f"/reseller/billing-runs/{mine}").get_data(as_text=True)
    assert "number 4420 has no monthly price" in detail
    admin = login(new_client(), world.admin).get("/admin/billing-runs").get_data(as_text=True)
    assert "2026-12" in admin and "2026-11" in admin and "Reseller B" in admin


def test_a_reseller_starts_its_current_period_twice_and_is_charged_once(app, make_tenant, make_login,
                                                                         new_client, login):
    tenant = make_tenant()
    tenant_id = tenant.id
    account_id = billed_account(tenant, users=2, cost_per_user="5.00", credit="100.00")
    owner = login(new_client(), make_login(tenant, "reseller_owner"))
    for _ in range(2):
        resp = owner.post("/reseller/billing-runs/start", follow_redirects=True)
        assert "Started:" in resp.get_data(as_text=True)
        run_jobs(app)
    with unscoped():
        charges = db.session.execute(select(RecurringCharge).where(RecurringCharge.account_id == account_id)
                                     ).scalars().all()
        runs = db.session.execute(select(ChargeRun).where(ChargeRun.tenant_id == tenant_id)).scalars().all()
    assert len(runs) == 1 and runs[0].finished_at is not None
    assert len({(c.kind, c.item, c.period) for c in charges}) == len(charges) >= 1
    page = owner.get("/reseller/billing-runs").get_data(as_text=True)
    assert runs[0].period in page and "done" in page


def test_read_only_logins_and_the_admin_cannot_start_a_run(world, new_client, login, make_login):
    reader = login(new_client(), make_login(world.a, "reseller_readonly"))
    assert reader.get("/reseller/billing-runs").status_code == 200
    assert reader.post("/reseller/billing-runs/start").status_code == 403
    assert login(new_client(), world.admin).post("/admin/billing-runs/start").status_code in (404, 405)
