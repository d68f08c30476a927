"""The period run under real RQ worker processes, real Redis and real PostgreSQL: two workers
racing on the same run, and a worker SIGKILLed half-way whose run is resumed. Every account
must end up charged exactly once."""
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from tenants.scope import unscoped
from tests.conftest import TestConfig
from tests.integration.billing_support import NEXT, NEXT_NOW

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _accounts(tenant_id: int, count: int) -> list[int]:
    """Prepaid accounts with 1 user at 1.00 and 10.00 of credit, made in one transaction."""
    from app.accounts.operations import create_account
    from app.billing.models import ServicePlan

    ids = []
    with unscoped():
        for i in range(count):
            a = create_account(tenant_id=tenant_id, name=f"Worker test {i}", email=f"w{i}@customer.example",
                               initial_credit=Decimal("10.00"))
            db.session.add(ServicePlan(tenant_id=tenant_id, account_id=a.id, name=f"Plan {a.id}", users=1,
                                       cost_per_user=Decimal("1.00")))
            ids.append(a.id)
        db.session.commit()
    return ids


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_worker_left_behind():
    """A test that fails half-way must not leave a worker running: it would take the next
    test's jobs (against this test's schema)."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _worker(*, burst: bool, name: str | None = None) -> subprocess.Popen:
    """A real worker as the Procfile starts it (the worker class that builds the app before forking)."""
    env = {**os.environ, "DATABASE_URL": TestConfig.SQLALCHEMY_DATABASE_URI, "REDIS_URL": TestConfig.REDIS_URL,
           "PYTHONPATH": str(ROOT), "PATH": f"{BIN}:{os.environ['PATH']}"}
    cmd = [str(BIN / "rq"), "worker", "--worker-class", "workers.runner.Worker", "--url", TestConfig.REDIS_URL,
           "default"] + (["--burst"] if burst else []) + (["--name", name] if name else [])
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    _started.append(proc)
    return proc


def _children(pid: int) -> list[int]:
    """The worker's work horses (RQ forks one per job, in a process group of its own)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _kill_hard(proc) -> None:
    """SIGKILL the worker and its work horse at once, as a machine losing power would."""
    horses = _children(proc.pid)
    assert horses, "the worker has no work horse: it is not running the job"
    for pid in [proc.pid, *horses]:
        os.kill(pid, signal.SIGKILL)


def _wait(proc, timeout=120) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"worker did not finish:\n{out[-3000:]}")
    return out


def _users_entries() -> dict[int, int]:
    """account id -> how many `users` charges of the period it has."""
    db.session.remove()
    with unscoped():
        rows = db.session.execute(select(LedgerEntry.account_id, func.count()).where(
            LedgerEntry.idempotency_key.like(f"%:users:{NEXT}")).group_by(LedgerEntry.account_id)).all()
    return dict(rows)


def _marked(run_period=NEXT) -> int:
    from app.billing.cycle import ChargeRun, ChargeRunAccount

    db.session.remove()
    with unscoped():
        return db.session.execute(select(func.count()).select_from(ChargeRunAccount).join(
            ChargeRun, ChargeRun.id == ChargeRunAccount.run_id).where(ChargeRun.period == run_period)).scalar_one()


def _run_row(tenant_id):
    from app.billing.cycle import ChargeRun

    db.session.remove()
    with unscoped():
        return db.session.execute(select(ChargeRun).where(ChargeRun.tenant_id == tenant_id,
                                                          ChargeRun.period == NEXT)).scalar_one()


def test_the_same_period_run_twice_concurrently_by_two_workers_charges_each_account_once(app, make_tenant):
    from rq.job import Job

    from app import jobs
    from workers.billing import charge_period, enqueue_run, run_job_id

    tenant_id = make_tenant().id
    ids = _accounts(tenant_id, 120)
    q = jobs.queue(app)
    args = {"batch_size": 5, "pause": 0.1, "now": NEXT_NOW}
    first = enqueue_run(tenant_id, NEXT, **args)
    assert enqueue_run(tenant_id, NEXT, **args) == first and q.count == 1      # unique job id
    # The same run again under another id, as a retried or hand-started job would be.
    q.enqueue(charge_period, args=(tenant_id, NEXT), kwargs=args, job_id=run_job_id(tenant_id, NEXT) + "-again")
    workers = [_worker(burst=True), _worker(burst=True)]
    outputs = [_wait(w) for w in workers]
    assert all("Traceback" not in o for o in outputs), outputs

    results = [Job.fetch(j, connection=q.connection).return_value()
               for j in (first, run_job_id(tenant_id, NEXT) + "-again")]
    assert all(r is not None for r in results), outputs
    # Both ran at once and shared the accounts (SKIP LOCKED): none was taken by both.
    assert all(r["this_job"] > 0 for r in results) and sum(r["this_job"] for r in results) == len(ids)
    assert _users_entries() == {a: 1 for a in ids}
    run = _run_row(tenant_id)
    assert run.charged == len(ids) and run.failed == 0 and run.passes == 2 and run.finished_at is not None
    with unscoped():
        assert balance_mismatches() == []
        from app.accounts.models import Account
        balances = set(db.session.execute(select(Account.balance).where(Account.id.in_(ids))).scalars())
    assert balances == {Decimal("9.00")}


def test_a_worker_killed_mid_run_is_resumed_and_every_account_is_charged_exactly_once(app, make_tenant):
    from workers.billing import enqueue_run

    tenant_id = make_tenant().id
    ids = _accounts(tenant_id, 60)
    enqueue_run(tenant_id, NEXT, batch_size=5, pause=0.3, now=NEXT_NOW)
    worker = _worker(burst=False)
    deadline = time.time() + 60
    while _marked() < 10 and time.time() < deadline:
        time.sleep(0.1)
    _kill_hard(worker)                              # the worker and its work horse, mid-run
    worker.communicate(timeout=10)
    done = _marked()
    assert 10 <= done < len(ids), done
    charged = _users_entries()
    assert len(charged) == done and set(charged.values()) == {1}   # whole batches or nothing
    assert _run_row(tenant_id).finished_at is None

    # The next cron tick finds the job "started" but its run silent: it queues it again.
    app.config["BILLING_RUN_STALE_SECONDS"] = 0
    try:
        enqueue_run(tenant_id, NEXT, batch_size=20, now=NEXT_NOW)
    finally:
        app.config.pop("BILLING_RUN_STALE_SECONDS")
    out = _wait(_worker(burst=True))
    assert "Traceback" not in out, out
    assert _users_entries() == {a: 1 for a in ids}
    run = _run_row(tenant_id)
    assert run.charged == len(ids) and run.passes == 2 and run.finished_at is not None
    with unscoped():
        assert balance_mismatches() == []


# --- a big run and its helper job ------------------------------------------------------------------

def _finished(tenant_id) -> bool:
    from app.billing.cycle import ChargeRun

    db.session.remove()
    with unscoped():
        return db.session.execute(select(ChargeRun.finished_at).where(
            ChargeRun.tenant_id == tenant_id, ChargeRun.period == NEXT)).scalar() is not None


def _until(predicate, timeout=120, what="the run"):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"{what}: timed out")
        time.sleep(0.1)


def _stop(proc) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    return _wait(proc, timeout=30)      # workers.runner.PromptShutdown: a warm shutdown takes < 1 s


def _workers(n: int) -> dict[str, subprocess.Popen]:
    import uuid

    names = [f"cycle-test-{uuid.uuid4().hex[:8]}" for _ in range(n)]
    return {name: _worker(burst=False, name=name) for name in names}


def _job(job_id):
    from rq.job import Job

    from app import jobs

    return Job.fetch(job_id, connection=jobs.redis_connection())


def test_a_big_run_shares_its_batches_with_a_helper_job_and_charges_each_account_once(app, make_tenant):
    from workers.billing import enqueue_run, run_job_id

    tenant_id = make_tenant().id
    ids = _accounts(tenant_id, 120)
    first = enqueue_run(tenant_id, NEXT, batch_size=5, pause=0.05, helpers=1, now=NEXT_NOW)
    workers = _workers(2)
    try:
        _until(lambda: _finished(tenant_id))
        helper = f"{run_job_id(tenant_id, NEXT)}-p1-h1"
        _until(lambda: _job(first).get_status() == "finished" and _job(helper).get_status() == "finished",
               what="the jobs")
    finally:
        outputs = [_stop(w) for w in workers.values()]
    assert all("Traceback" not in o for o in outputs), outputs
    mine, theirs = _job(first).return_value(), _job(helper).return_value()
    # Both took batches (SKIP LOCKED), none was taken twice.
    assert mine["this_job"] > 0 and theirs["this_job"] > 0 and mine["this_job"] + theirs["this_job"] == len(ids)
    assert _users_entries() == {a: 1 for a in ids}
    run = _run_row(tenant_id)
    assert run.charged == len(ids) and run.passes == 1 and run.failed == 0
    # The run's progress, as the runs page reads it from the first job, counts the helper's work too.
    assert _job(first).meta["done"] == _job(first).meta["total"] == len(ids)
    with unscoped():
        assert balance_mismatches() == []


def test_a_helper_killed_mid_run_leaves_its_batch_to_the_run_which_charges_every_account_once(app, make_tenant):
    from workers.billing import enqueue_run, run_job_id

    tenant_id = make_tenant().id
    ids = _accounts(tenant_id, 80)
    first = enqueue_run(tenant_id, NEXT, batch_size=4, pause=0.3, helpers=1, now=NEXT_NOW)
    helper = f"{run_job_id(tenant_id, NEXT)}-p1-h1"
    workers = _workers(2)
    try:
        _until(lambda: _marked() >= 12 and _job(helper).get_status() == "started", what="the helper")
        _kill_hard(workers.pop(_job(helper).worker_name))      # its uncommitted batch rolls back
        _until(lambda: _finished(tenant_id))
    finally:
        outputs = [_stop(w) for w in workers.values()]
    assert all("Traceback" not in o for o in outputs), outputs
    assert _job(first).return_value()["finished"] is True
    assert _users_entries() == {a: 1 for a in ids}
    run = _run_row(tenant_id)
    assert run.charged == len(ids) and run.failed == 0
    with unscoped():
        assert balance_mismatches() == []


def test_a_run_whose_first_job_is_killed_beside_its_helper_is_resumed_and_charges_every_account_once(app, make_tenant):
    from workers.billing import enqueue_run, run_job_id

    tenant_id = make_tenant().id
    ids = _accounts(tenant_id, 80)
    first = enqueue_run(tenant_id, NEXT, batch_size=4, pause=0.3, helpers=1, now=NEXT_NOW)
    helper = f"{run_job_id(tenant_id, NEXT)}-p1-h1"
    workers = _workers(2)
    try:
        _until(lambda: _marked() >= 12 and _job(helper).get_status() == "started", what="the helper")
        _kill_hard(workers.pop(_job(first).worker_name))
        _until(lambda: _job(helper).get_status() == "finished", what="the helper")
        # The helper went on alone; what the killed job held is left for the next tick, which
        # finds the first job "started" with its run silent, and queues it again.
        app.config["BILLING_RUN_STALE_SECONDS"] = 0
        try:
            enqueue_run(tenant_id, NEXT, batch_size=20, now=NEXT_NOW)
        finally:
            app.config.pop("BILLING_RUN_STALE_SECONDS")
        _until(lambda: _finished(tenant_id))
    finally:
        outputs = [_stop(w) for w in workers.values()]
    assert all("Traceback" not in o for o in outputs), outputs
    assert _users_entries() == {a: 1 for a in ids}
    run = _run_row(tenant_id)
    assert run.charged == len(ids) and run.failed == 0
    with unscoped():
        assert balance_mismatches() == []
