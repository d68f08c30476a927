"""Billing runs in Chromium: a run in progress shows its bar, which follows the job's progress
and turns to "done" without a reload (htmx polling)."""
from datetime import datetime

from playwright.sync_api import expect
from sqlalchemy import update

from app.billing.cycle import ChargeRun
from app.billing.runs import run_job_id
from app.extensions import db
from app.jobs import redis_connection
from tenants.scope import unscoped


def test_the_progress_bar_follows_the_run(app, world, page, browser_login, shot):
    from rq.job import Job

    with unscoped():
        run = ChargeRun(tenant_id=world.a.id, period="2026-12", passes=1, started_at=datetime(2026, 12, 1, 0, 5))
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    job = Job.create("workers.billing.charge_period", args=(world.a.id, "2026-12"), id=run_job_id(world.a.id, "2026-12"),
                     connection=redis_connection(app))
    job.meta = {"done": 3, "total": 10}
    job.save()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/billing-runs")
    expect(page.locator("#runs")).to_contain_text("3 / 10")
    shot(page, "reseller-billing-runs-progress")
    page.evaluate("window.__marker = 1")
    job.meta = {"done": 10, "total": 10}
    job.save_meta()
    expect(page.locator("#runs")).to_contain_text("10 / 10", timeout=8000)
    with unscoped():
        db.session.execute(update(ChargeRun).where(ChargeRun.id == run_id)
                           .values(finished_at=datetime(2026, 12, 1, 0, 7), charged=10))
        db.session.commit()
    expect(page.locator("#runs .badge.active")).to_have_text("done", timeout=8000)
    assert page.evaluate("window.__marker") == 1                       # never reloaded
    shot(page, "reseller-billing-runs-done")
