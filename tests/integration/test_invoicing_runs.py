"""Which periods the document run takes and when (app/invoicing/runs.py, workers/invoicing.py):
closed periods per billing schedule and time zone, the issue hour, the cron fan-out with its
deterministic job ids, daily postpaid invoices and daily prepaid accounts' monthly statements."""
from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from tenants.scope import tenant_scope, unscoped
from tests.integration.invoicing_support import (dated, invoices_of, make_postpaid, plain, post_at, run_documents,
                                                 set_settings)


def test_due_keys_follow_each_accounts_schedule_and_zone(make_tenant, make_account):
    from app.invoicing.runs import due_keys

    tenant = plain(make_tenant())
    make_postpaid(make_account, tenant)                                            # monthly, day 1, UTC
    make_postpaid(make_account, tenant, tz="America/New_York", billing_day=15)     # monthly, day 15
    make_postpaid(make_account, tenant, billing_schedule="daily")                  # daily postpaid: each day
    dated(make_account(tenant, billing_schedule="daily"))                          # daily prepaid: statements monthly
    with tenant_scope(tenant.id):
        keys = due_keys(tenant.id, datetime.fromisoformat("2026-12-04T12:00:00+00:00"))
    assert keys == ["2026-10-15", "2026-11", "2026-12-03"]
    with tenant_scope(tenant.id):    # 1 December 03:00 UTC: still 30 November in New York
        early = due_keys(tenant.id, datetime.fromisoformat("2026-12-01T03:00:00+00:00"))
    assert "2026-11" in early and "2026-11-30" in early


def test_the_issue_hour_holds_the_run_until_that_local_time(make_tenant, make_account):
    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant, tz="Europe/Paris")
    post_at(a.id, "-5.00", "user_charge", "u", datetime(2026, 11, 10))
    set_settings(tenant, issue_hour=9)
    early = run_documents(tenant.id, now="2026-12-01T07:30:00+00:00")     # 08:30 in Paris
    assert early["this_job"] == 0 and invoices_of(a.id) == []
    on_time = run_documents(tenant.id, now="2026-12-01T08:05:00+00:00")   # 09:05 in Paris
    assert on_time["invoiced"] == 1 and invoices_of(a.id)[0].period_key == "2026-11"


def test_daily_postpaid_invoices_and_daily_prepaid_monthly_statements(make_tenant, make_account):
    from app.invoicing.models import Statement

    tenant = plain(make_tenant())
    a = make_postpaid(make_account, tenant, billing_schedule="daily")
    p = dated(make_account(tenant, billing_schedule="daily", credit="10"))
    post_at(a.id, "-1.00", "recurring", "x1", datetime(2026, 11, 29, 10))
    post_at(a.id, "-2.00", "recurring", "x2", datetime(2026, 11, 30, 10))
    post_at(p.id, "-3.00", "recurring", "p1", datetime(2026, 11, 30, 10))
    day = run_documents(tenant.id, "2026-11-30")
    assert day["invoiced"] == 1 and day["statement"] == 0
    (inv,) = invoices_of(a.id)
    assert (inv.period_key, str(inv.period_start), str(inv.period_end), inv.total) == (
        "2026-11-30", "2026-11-30", "2026-12-01", 2)
    month = run_documents(tenant.id, "2026-11")
    assert month["statement"] == 1 and month["invoiced"] == 0
    with unscoped():
        s = db.session.execute(select(Statement).where(Statement.account_id == p.id)).scalar_one()
        assert (s.period_key, s.charges) == ("2026-11", -3)


def test_the_cron_queues_one_job_per_tenant_and_closed_period_with_its_id(app, make_tenant, make_account):
    from app import jobs
    from workers.invoicing import enqueue_invoice_runs

    t1, t2 = plain(make_tenant()), plain(make_tenant())
    make_postpaid(make_account, t1)
    make_postpaid(make_account, t2, tz="Asia/Tokyo", billing_day=3)
    db.session.remove()
    now = "2026-12-04T12:00:00+00:00"
    queued = enqueue_invoice_runs(now=now)
    assert sorted(queued) == sorted([f"invoice-run-{t1.id}-2026-11", f"invoice-run-{t2.id}-2026-11-03"])
    assert sorted(enqueue_invoice_runs(now=now)) == sorted(queued)      # a doubled tick: the same jobs
    assert jobs.queue(app).count == 2
