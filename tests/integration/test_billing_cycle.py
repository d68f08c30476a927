"""Billing cycle: recurring charges at each period start, owed charges, autorefill, cron fan-out."""
from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import jobs
from app.extensions import db
from app.ledger import balance_mismatches
from tenants.scope import tenant_scope, unscoped
from tests.integration.billing_support import (NEXT, NEXT_NOW, account, add_extra, billed_account, charges,
                                               entries, ledger_rows, notifications, set_fields)
from tests.integration.onboarding_support import run_jobs
from workers.billing import charge_period, enqueue_period_runs, run_job_id


def _ids(tenant):
    """The tenant's id, kept apart from its row (the tests reset their session often)."""
    return SimpleNamespace(id=tenant.id)


def _letter(account_id, kind):
    from app.notifications.models import Notification

    with unscoped():
        return db.session.execute(select(Notification.body).where(Notification.account_id == account_id,
                                                                  Notification.kind == kind)).scalars().first()


def _run(tenant, key=NEXT, now=NEXT_NOW, **kw):
    return charge_period(tenant.id, key, now=now, **kw)


def test_a_period_run_charges_users_numbers_and_extras_once(app, make_tenant):
    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=3, cost_per_user="5.00", numbers=2, monthly="2.50")
    monthly = add_extra(tenant, a, description="Support", amount="10.00", period="monthly", start=date(2026, 12, 5))
    weekly = add_extra(tenant, a, description="Backup", amount="1.00", period="weekly", start=date(2026, 12, 31))
    ended = add_extra(tenant, a, description="Old", amount="7.00", period="monthly", start=date(2026, 1, 1),
                      end=date(2026, 12, 31))
    before = account(a).balance

    summary = _run(tenant)

    got = entries(a)
    assert got[f"account:{a}:users:{NEXT}"] == Decimal("-15.00")
    numbers = {k: v for k, v in got.items() if k.startswith(f"account:{a}:number:") and k.endswith(NEXT)}
    assert sorted(numbers.values()) == [Decimal("-2.50"), Decimal("-2.50")]
    assert got[f"account:{a}:extra:{monthly}:{NEXT}"] == Decimal("-10.00")
    # Weekly from Dec 31: Jan 7, 14, 21, 28 fall in January.
    assert got[f"account:{a}:extra:{weekly}:{NEXT}"] == Decimal("-4.00")
    assert f"account:{a}:extra:{ended}:{NEXT}" not in got
    assert account(a).balance == before - Decimal("34.00")
    assert summary["charged"] == 1 and summary["finished"] and summary["failed"] == 0

    rows = ledger_rows()
    again = _run(tenant)
    assert ledger_rows() == rows and account(a).balance == before - Decimal("34.00")
    assert again["charged"] == 1 and again["skipped"] == 0      # done accounts are not taken again
    assert again["this_job"] == 0 and again["run_id"] == summary["run_id"] and again["finished"]
    with unscoped():
        assert balance_mismatches() == []


def test_the_first_month_charged_at_creation_is_not_charged_again(app, make_tenant):
    """Onboarding charged this month (prorated) under account:<id>:users:<YYYY-MM>: the run for
    the same month finds the key taken."""
    tenant = _ids(make_tenant())
    a = billed_account(tenant, numbers=1)
    this_month = datetime.now(timezone.utc).strftime("%Y-%m")
    first = entries(a)
    assert f"account:{a}:users:{this_month}" in first
    charge_period(tenant.id, this_month)
    assert entries(a) == first
    assert {c.status for c in charges(a)} == {"covered"}


def test_the_user_count_is_the_one_in_force_at_the_period_start(app, make_tenant):
    from app.billing.orders import Order

    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=5, cost_per_user="2.00")
    with unscoped():   # a change from 3 to 5 users made after the January period started
        db.session.add(Order(tenant_id=tenant.id, account_id=a, kind="users", description="Users 3 → 5",
                             status="processed", details={"before": "3", "after": "5"},
                             created_at=datetime(2027, 1, 10), processed_at=datetime(2027, 1, 10)))
        db.session.commit()
    _run(tenant, now="2027-01-11T00:00:00+00:00")
    assert entries(a)[f"account:{a}:users:{NEXT}"] == Decimal("-6.00")


def test_a_prepaid_account_that_cannot_pay_owes_is_suspended_and_comes_back_with_credit(app, make_tenant):
    from app.accounts.operations import adjust_balance
    from app.accounts.models import Account

    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=3, cost_per_user="5.00", numbers=1, monthly="2.50", credit="30.00")
    set_fields(a, autorefill=False)
    balance = account(a).balance               # 30 less the prorated first month
    assert balance < Decimal("15.00") + Decimal("2.50") + Decimal("20")
    add_extra(tenant, a, amount="20.00", start=date(2027, 1, 1))   # makes sure it does not fit

    summary = _run(tenant)
    acct = account(a)
    assert summary["suspended"] == 1
    assert acct.status == "suspended" and acct.status_reason == "unpaid recurring charges"
    owed = charges(a, "owed")
    taken = charges(a, "charged")
    assert [c.kind for c in taken + owed] == ["users", "number", "extra"]
    assert owed and owed[-1].kind == "extra"
    taken_sum, owed_sum = sum(c.amount for c in taken), sum(c.amount for c in owed)
    assert acct.balance == balance - taken_sum
    assert "charges_unpaid" in notifications(a)
    body = _letter(a, "charges_unpaid")
    assert f"${owed_sum:.2f} is owed" in body and "The account is suspended until they are paid" in body
    assert _run(tenant)["suspended"] == 1 and len(charges(a, "owed")) == len(owed)   # re-run: nothing new

    with tenant_scope(tenant.id):     # a manual credit that covers them
        acct = db.session.execute(select(Account).where(Account.id == a)).scalar_one()
        adjust_balance(acct, "credit", Decimal("50.00"), "bank transfer", nonce="n1")
        db.session.commit()
    run_jobs(app)
    acct = account(a)
    assert charges(a, "owed") == []
    assert acct.status == "active" and acct.status_reason == ""
    assert acct.balance == balance - taken_sum + Decimal("50.00") - owed_sum
    assert notifications(a)[-1] == "reactivated"
    with unscoped():
        assert balance_mismatches() == []


def test_owed_charges_apply_in_order_and_a_short_credit_leaves_the_account_suspended(app, make_tenant):
    from app import ledger

    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=1, cost_per_user="40.00", credit="45.00")
    add_extra(tenant, a, amount="5.00", start=date(2027, 1, 1))
    bal = account(a).balance
    _run(tenant)
    owed = charges(a, "owed")
    assert [c.kind for c in owed] == ["users", "extra"]          # the extra waits behind the users
    with tenant_scope(tenant.id):
        ledger.post(a, Decimal("40.00") - bal, "payment", "stripe:evt_1")   # covers the first only
        db.session.commit()
    run_jobs(app)
    assert [c.kind for c in charges(a, "owed")] == ["extra"]
    assert account(a).status == "suspended"
    with tenant_scope(tenant.id):
        ledger.post(a, Decimal("5.00"), "payment", "stripe:evt_2")
        db.session.commit()
    run_jobs(app)
    assert charges(a, "owed") == [] and account(a).status == "active" and account(a).balance == 0


def test_a_manual_suspension_is_not_lifted_by_a_credit(app, make_tenant):
    from app import ledger
    from app.accounts.models import Account
    from app.accounts.operations import set_account_status

    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=1, cost_per_user="40.00", credit="45.00")
    _run(tenant)
    with tenant_scope(tenant.id):
        acct = db.session.execute(select(Account).where(Account.id == a)).scalar_one()
        set_account_status(acct, "enable")
        set_account_status(acct, "suspend", reason="fraud check")   # the reseller's own suspension
        ledger.post(a, Decimal("100.00"), "credit", "manual-1")
        db.session.commit()
    run_jobs(app)
    assert charges(a, "owed") == [] and account(a).status == "suspended"


def test_postpaid_charges_accumulate_and_past_the_limit_the_account_is_suspended(app, make_tenant):
    from app import ledger

    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=2, cost_per_user="10.00", credit="0", billing_type="postpaid",
                       credit_limit=Decimal("25.00"))
    start = account(a).balance
    assert start < 0                       # the first month, prorated, on credit
    summary = _run(tenant)
    acct = account(a)
    assert acct.balance == start - Decimal("20.00") and charges(a, "owed") == []
    if acct.balance + acct.credit_limit < 0:
        assert acct.status == "suspended" and acct.status_reason == "credit limit exceeded"
        assert summary["suspended"] == 1 and "credit_limit_exceeded" in notifications(a)
    else:
        assert acct.status == "active"
    _run(tenant, key="2027-02", now="2027-02-01T12:00:00+00:00")
    acct = account(a)
    assert acct.balance == start - Decimal("40.00") < -acct.credit_limit
    assert acct.status == "suspended" and acct.status_reason == "credit limit exceeded"
    with tenant_scope(tenant.id):
        ledger.post(a, -acct.balance, "payment", "stripe:evt_pay")
        db.session.commit()
    run_jobs(app)
    assert account(a).status == "active" and account(a).status_reason == ""


def test_autorefill_tops_the_balance_up_before_the_charges_once_per_period(app, make_tenant):
    tenant = _ids(make_tenant())
    a = billed_account(tenant, users=1, cost_per_user="10.00", credit="12.00", autorefill=True,
                       initial_balance=Decimal("50.00"))
    before = account(a).balance
    _run(tenant)
    got = entries(a)
    assert got[f"account:{a}:refill:{NEXT}"] == Decimal("50.00") - before
    assert got[f"account:{a}:users:{NEXT}"] == Decimal("-10.00")
    assert account(a).balance == Decimal("40.00") and charges(a, "owed") == []
    set_fields(a, version=account(a).version)
    _run(tenant)
    assert len(entries(a, "refill")) == 1


def test_daily_and_billing_day_accounts_follow_their_own_time_zone(app, make_tenant):
    from app.billing.cycle import due_run_keys, targets_of_key

    tenant = _ids(make_tenant())
    utc = billed_account(tenant, users=1, cost_per_user="1.00")
    auckland = billed_account(tenant, users=1, cost_per_user="1.00")
    fifteenth = billed_account(tenant, users=1, cost_per_user="30.00")
    set_fields(utc, billing_schedule="daily")
    set_fields(auckland, billing_schedule="daily", timezone="Pacific/Auckland")
    set_fields(fifteenth, billing_day=15)
    now = "2027-01-15T12:00:00+00:00"          # already Jan 16 in Auckland
    with tenant_scope(tenant.id):
        keys = due_run_keys(tenant.id, datetime.fromisoformat(now))
    assert keys == ["2027-01-15", "2027-01-16"]
    assert [t[0] for t in targets_of_key("2027-01-15")] == ["daily", "monthly"]
    _run(tenant, key="2027-01-15", now=now)
    assert f"account:{utc}:users:2027-01-15" in entries(utc)
    assert f"account:{fifteenth}:users:2027-01-15" in entries(fifteenth)
    assert entries(fifteenth)[f"account:{fifteenth}:users:2027-01-15"] == Decimal("-30.00")
    # The Auckland day starts before UTC's: at 10:59 UTC on the 15th it is 23:59 on the 15th there.
    early = charge_period(tenant.id, "2027-01-16", now="2027-01-15T10:59:00+00:00")
    assert early["charged"] == 0 and not any(k.endswith("2027-01-16") for k in entries(auckland))
    charge_period(tenant.id, "2027-01-16", now="2027-01-15T11:00:00+00:00")
    assert f"account:{auckland}:users:2027-01-16" in entries(auckland)
    assert not any(k.endswith("2027-01-16") for k in entries(utc))


def test_a_failing_account_is_recorded_the_others_charged_and_a_rerun_retries_it(app, make_tenant, monkeypatch):
    from app.billing import cycle
    from app.billing.cycle import ChargeRunAccount

    tenant = _ids(make_tenant())
    good = billed_account(tenant)
    bad = billed_account(tenant)
    real = cycle.due_charges

    def broken(account, *a, **kw):
        if account.id == bad:
            raise RuntimeError("price list unreadable")
        return real(account, *a, **kw)

    monkeypatch.setattr(cycle, "due_charges", broken)
    summary = _run(tenant)
    assert summary["failed"] == 1 and summary["charged"] == 1 and summary["finished"]
    with unscoped():
        row = db.session.execute(select(ChargeRunAccount).where(ChargeRunAccount.account_id == bad)).scalar_one()
    assert row.outcome == "failed" and "price list unreadable" in row.reason
    assert f"account:{bad}:users:{NEXT}" not in entries(bad) and f"account:{good}:users:{NEXT}" in entries(good)

    monkeypatch.setattr(cycle, "due_charges", real)
    summary = _run(tenant)
    assert summary["failed"] == 0 and summary["charged"] == 2 and summary["finished"]
    assert f"account:{bad}:users:{NEXT}" in entries(bad)


def test_the_natural_key_is_backed_by_a_unique_constraint(app, make_tenant):
    from sqlalchemy.exc import IntegrityError

    from app.billing.cycle import RecurringCharge

    tenant = _ids(make_tenant())
    a = billed_account(tenant)
    _run(tenant)
    with unscoped():
        c = charges(a)[0]
        db.session.add(RecurringCharge(tenant_id=tenant.id, account_id=a, kind=c.kind, item=c.item, period=c.period,
                                       amount=c.amount, ledger_key="other", status="charged"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_the_cron_tick_queues_one_job_per_tenant_and_period_and_a_doubled_tick_changes_nothing(app, make_tenant):
    t1, t2 = _ids(make_tenant()), _ids(make_tenant())
    a1, a2 = billed_account(t1), billed_account(t2)
    set_fields(a2, billing_schedule="daily")
    q = jobs.queue(app)
    first = enqueue_period_runs(now=NEXT_NOW)
    second = enqueue_period_runs(now=NEXT_NOW)
    assert first == second == [run_job_id(t1.id, NEXT), run_job_id(t2.id, "2027-01-01")]
    assert sorted(j for j in q.job_ids if j.startswith("charge-run-")) == sorted(first)
    run_jobs(app)
    assert f"account:{a1}:users:{NEXT}" in entries(a1) and f"account:{a2}:users:2027-01-01" in entries(a2)
    rows = ledger_rows()
    enqueue_period_runs(now=NEXT_NOW)      # the finished jobs still hold their ids: nothing queued
    run_jobs(app)
    assert ledger_rows() == rows


def test_a_failed_run_job_is_queued_again_by_the_next_tick(app, make_tenant):
    from rq.job import Job

    from app.jobs import redis_connection

    tenant = _ids(make_tenant())
    a = billed_account(tenant)
    enqueue_period_runs(now=NEXT_NOW)
    job = Job.fetch(run_job_id(tenant.id, NEXT), connection=redis_connection(app))
    job.set_status("failed")
    enqueue_period_runs(now=NEXT_NOW)
    run_jobs(app)
    assert f"account:{a}:users:{NEXT}" in entries(a)


def test_a_period_key_that_is_not_one_is_refused(app, make_tenant):
    tenant = _ids(make_tenant())
    with pytest.raises(ValueError):
        _run(tenant, key="2027-1")


def test_the_cron_table_runs_the_period_runs_every_ten_minutes(app):
    from rq.cron import CronScheduler

    from workers import billing

    scheduler = CronScheduler(connection=jobs.redis_connection(app))
    scheduler.load_config_from_file("workers.cron")
    entries = {j.func.__name__: j for j in scheduler._cron_jobs}
    entry = entries["enqueue_period_runs"]
    assert entry.func.__module__ == billing.__name__ and entry.cron == "*/10 * * * *"
    assert {"check_ledgers", "enqueue_rating", "enqueue_switch_reconcile"} <= set(entries)


def test_an_account_with_an_impossible_billing_day_does_not_stop_the_other_runs(app, make_tenant):
    t1, t2 = _ids(make_tenant()), _ids(make_tenant())
    billed_account(t1)
    bad = billed_account(t1)
    good = billed_account(t2)
    set_fields(bad, billing_day=31)
    queued = enqueue_period_runs(now=NEXT_NOW)
    assert queued == [run_job_id(t1.id, NEXT), run_job_id(t2.id, NEXT)]
    run_jobs(app)
    assert f"account:{good}:users:{NEXT}" in entries(good)
    assert not any(k.endswith(NEXT) for k in entries(bad))


@pytest.mark.parametrize("path", ["batch", "one_by_one"])
def test_the_batch_and_the_account_by_account_paths_charge_alike(app, make_tenant, monkeypatch, path):
    """A batch is charged at once (charge_accounts); after an error, account by account
    (charge_account, a savepoint each). Both follow the same rules."""
    from app.billing import cycle

    if path == "one_by_one":
        def fail(*a, **kw):
            raise RuntimeError("force the account-by-account path")
        monkeypatch.setattr(cycle, "charge_accounts", fail)
    tenant = _ids(make_tenant())
    rich = billed_account(tenant, users=2, cost_per_user="5.00", numbers=1, monthly="2.50", credit="100.00")
    poor = billed_account(tenant, users=1, cost_per_user="40.00", credit="45.00")
    refilled = billed_account(tenant, users=1, cost_per_user="10.00", credit="12.00", autorefill=True,
                              initial_balance=Decimal("30.00"))
    post = billed_account(tenant, users=1, cost_per_user="50.00", credit="0", billing_type="postpaid",
                          credit_limit=Decimal("10.00"))
    add_extra(tenant, rich, amount="1.00", period="weekly", start=date(2027, 1, 1))
    before = {a: account(a).balance for a in (rich, poor, refilled, post)}
    summary = _run(tenant)
    assert (summary["charged"], summary["suspended"], summary["failed"]) == (2, 2, 0)
    assert account(rich).balance == before[rich] - Decimal("10.00") - Decimal("2.50") - Decimal("5.00")
    assert account(poor).balance == before[poor] and account(poor).status_reason == "unpaid recurring charges"
    assert account(refilled).balance == Decimal("20.00")
    assert account(post).balance == before[post] - Decimal("50.00")
    assert account(post).status_reason == "credit limit exceeded"
    with unscoped():
        assert balance_mismatches() == []


@pytest.mark.parametrize("path", ["batch", "one_by_one"])
def test_a_run_going_over_an_account_again_neither_charges_nor_refills_it_twice(app, make_tenant, monkeypatch, path):
    """Autorefill comes before the period's charges: an account the run goes over again (its
    marks lost) is not topped up from the balance its charges left. One with nothing due is
    refilled at each period start, once."""
    from sqlalchemy import delete

    from app.billing import cycle
    from app.billing.cycle import ChargeRunAccount

    if path == "one_by_one":
        monkeypatch.setattr(cycle, "charge_accounts", lambda *a, **kw: 1 / 0)
    tenant = _ids(make_tenant())
    charged = billed_account(tenant, users=1, cost_per_user="60.00", credit="200.00", autorefill=True,
                             initial_balance=Decimal("1.00"))
    idle = billed_account(tenant, users=1, cost_per_user="0", credit="5.00", autorefill=True,
                          initial_balance=Decimal("50.00"))
    start = account(charged).balance                  # what the prorated first month left
    target = start - Decimal("1.00")
    set_fields(charged, initial_balance=target)       # above its target at the period start
    _run(tenant)
    assert account(charged).balance == start - Decimal("60.00") < target
    assert entries(charged, "refill") == {}
    assert entries(idle, "refill") == {f"account:{idle}:refill:{NEXT}": Decimal("45.00")}
    rows = ledger_rows()
    with unscoped():
        db.session.execute(delete(ChargeRunAccount))
        db.session.commit()
    again = _run(tenant)
    assert again["this_job"] == 2 and ledger_rows() == rows
    assert account(charged).balance == start - Decimal("60.00") and account(idle).balance == Decimal("50.00")
    with unscoped():
        assert balance_mismatches() == []


def test_a_suspension_by_a_batch_is_in_the_history_as_one_by_one_and_moves_the_version(app, make_tenant):
    from app.audit import AuditEntry

    tenant = _ids(make_tenant())
    poor = billed_account(tenant, users=1, cost_per_user="40.00", credit="45.00")
    version = account(poor).version
    _run(tenant)
    acct = account(poor)
    assert acct.status == "suspended" and acct.status_reason == "unpaid recurring charges" and acct.version > version
    with unscoped():
        history = db.session.execute(select(AuditEntry.details).where(
            AuditEntry.account_id == poor, AuditEntry.action == "account.suspended")).scalars().all()
    assert history == [{"old": "active", "new": "suspended", "reason": "unpaid recurring charges"}]


def test_a_helper_that_finds_the_run_finished_changes_nothing(app, make_tenant):
    from workers.billing import help_charge_period

    tenant = _ids(make_tenant())
    a = billed_account(tenant)
    _run(tenant)
    with unscoped():
        run = cycle_run(tenant.id)
    rows = ledger_rows()
    late = help_charge_period(tenant.id, NEXT, now=NEXT_NOW)
    assert late == {"period": NEXT, "this_job": 0, "finished": True}
    with unscoped():
        assert cycle_run(tenant.id).finished_at == run.finished_at
    assert ledger_rows() == rows and f"account:{a}:users:{NEXT}" in entries(a)


def cycle_run(tenant_id):
    from app.billing.cycle import run_of

    db.session.remove()
    return run_of(tenant_id, NEXT)


def test_a_big_run_asks_one_helper_per_other_worker_and_a_small_one_none(app):
    from rq import Worker

    from workers.billing import _helpers_wanted

    q = jobs.queue(app)
    workers = [Worker([q], connection=q.connection, name=f"cycle-helpers-{i}") for i in range(3)]
    for w in workers:
        w.register_birth()
    app.config["BILLING_RUN_HELPER_MIN_ACCOUNTS"] = 100
    try:
        assert _helpers_wanted(150) == 0            # not two jobs' worth
        assert _helpers_wanted(250) == 1            # two jobs' worth: one helper
        assert _helpers_wanted(100_000) == 2        # one per other worker
        app.config["BILLING_RUN_HELPERS"] = 1
        assert _helpers_wanted(100_000) == 1        # at most the setting
        redis_url, app.config["REDIS_URL"] = app.config["REDIS_URL"], None
        assert _helpers_wanted(100_000) == 0        # jobs in-process: no helpers
        app.config["REDIS_URL"] = redis_url
    finally:
        app.config.pop("BILLING_RUN_HELPER_MIN_ACCOUNTS")
        app.config.pop("BILLING_RUN_HELPERS", None)
        for w in workers:
            w.register_death()


def test_charge_rows_go_in_by_copy_and_a_key_taken_meanwhile_falls_back_to_insert_on_conflict(app, make_tenant):
    """A batch's charge rows go in by one COPY; if another transaction wrote one of their keys
    meanwhile (an extra added right now), the COPY is refused whole and the rows go in one by
    one under their key: that row is left as it was, the others are written."""
    from app.billing.cycle import RecurringCharge, _insert_charges
    from tenants.models import utcnow

    tenant = _ids(make_tenant())
    a = billed_account(tenant)
    now = utcnow()

    def row(item, amount):
        return (tenant.id, a, "extra", item, NEXT, Decimal(amount), f"Extra {item}", f"account:{a}:extra:{item}:{NEXT}",
                "charged", None, now, now)

    with tenant_scope(tenant.id):
        assert _insert_charges(db.session, [row(1, "1.00"), row(2, "2.00")]) == {(a, "extra", 1), (a, "extra", 2)}
        db.session.commit()
        assert _insert_charges(db.session, [row(2, "9.99"), row(3, "3.00")]) == {(a, "extra", 3)}
        db.session.commit()
        got = dict(db.session.execute(select(RecurringCharge.item, RecurringCharge.amount).where(
            RecurringCharge.account_id == a, RecurringCharge.kind == "extra")).all())
    assert got == {1: Decimal("1.00"), 2: Decimal("2.00"), 3: Decimal("3.00")}
