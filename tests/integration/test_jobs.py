"""Background jobs: queued after commit, unique job ids, one effect per key."""
from decimal import Decimal

from rq import Queue
from sqlalchemy import func, select

from app import jobs
from app.accounts.models import Account
from app.extensions import db
from app.ledger import LedgerEntry
from tenants.scope import unscoped
from tests.jobs_fixtures import credit_account
from workers.runner import SimpleWorker


def _balance(account_id):
    with unscoped():
        return db.session.scalar(select(Account.balance).where(Account.id == account_id))


def test_a_job_is_queued_only_when_the_transaction_commits(app, world):
    app.config["JOBS_SYNCHRONOUS"] = True
    jobs.enqueue(credit_account, world.a.id, world.account_a.id, "k1", job_id="credit-k1")
    db.session.rollback()
    q = jobs.queue(app)
    assert q.count == 0
    jobs.enqueue(credit_account, world.a.id, world.account_a.id, "k1", job_id="credit-k1")
    db.session.commit()
    assert q.count == 1


def test_rq_runs_the_job_once_even_when_enqueued_twice(app, world):
    q = jobs.queue(app)
    for _ in range(2):
        jobs.enqueue(credit_account, world.a.id, world.account_a.id, "k2", job_id="credit-k2")
        db.session.commit()
    assert q.count == 1
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert _balance(world.account_a.id) == Decimal("11.00")
    assert jobs.job_status("credit-k2")["meta"] == {"done": 3, "total": 3}


def test_rerunning_a_job_changes_nothing(app, world):
    q = Queue("again", connection=jobs.redis_connection(app))
    for _ in range(2):
        q.enqueue(credit_account, world.a.id, world.account_a.id, "k3")  # no job id: both run
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert _balance(world.account_a.id) == Decimal("11.00")
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.idempotency_key == "k3")) == 1


def test_without_redis_jobs_run_in_process(app, world):
    redis_url, app.config["REDIS_URL"] = app.config["REDIS_URL"], None
    try:
        job_id = jobs.dispatch(credit_account, world.a.id, world.account_a.id, "k4", job_id="local-k4")
        assert jobs.job_status(job_id)["status"] == "finished"
        assert jobs.job_status(job_id)["meta"]["done"] == 3
        assert _balance(world.account_a.id) == Decimal("11.00")
    finally:
        app.config["REDIS_URL"] = redis_url


def test_the_jobs_of_one_commit_are_queued_together_each_id_once(app, world):
    """A billing run queues hundreds of letters in one commit: one Redis transaction for all of
    them, with the unique ids kept (an id already queued is left out, as one by one)."""
    q = jobs.queue(app)
    jobs.enqueue(credit_account, world.a.id, world.account_a.id, "m0", job_id="credit-m0")
    db.session.commit()                                  # alone: queued before the batch
    for key in ("m0", "m1", "m2", "m2"):
        jobs.enqueue(credit_account, world.a.id, world.account_a.id, key, job_id=f"credit-{key}")
    db.session.commit()
    assert sorted(q.job_ids) == ["credit-m0", "credit-m1", "credit-m2"]
    SimpleWorker([q], connection=q.connection).work(burst=True)
    assert _balance(world.account_a.id) == Decimal("13.00")
    assert {jobs.job_status(f"credit-{k}")["status"] for k in ("m0", "m1", "m2")} == {"finished"}



def test_a_worker_stops_within_a_second_once_its_channel_is_unsubscribed(app):
    """RQ's command-channel thread waits up to its sleep time for a subscription once the
    channel is gone, and redis-py's stop() waits for it: with RQ's 60 s, a warm shutdown hung a
    minute (seen in CI). Ours stops within a second."""
    import threading
    import time as clock

    q = jobs.queue(app)
    worker = SimpleWorker([q], connection=q.connection)
    worker.subscribe()
    worker.pubsub.unsubscribe()
    deadline = clock.monotonic() + 5
    while worker.pubsub.subscribed and clock.monotonic() < deadline:   # the thread read the reply
        clock.sleep(0.02)
    clock.sleep(0.2)                     # and waits for a subscription now
    stopper = threading.Thread(target=worker.pubsub_thread.stop, daemon=True)
    started = clock.monotonic()
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive() and clock.monotonic() - started < 1.5
    worker.pubsub.close()
