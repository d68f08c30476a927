"""Gapless numbers under real RQ worker processes, real Redis and real PostgreSQL: two workers run
two periods of the same tenant (one series: INV-2026-) and the same period a second time under
another job id, all at once. Every account gets exactly one invoice per period, and the numbers
are 1..N with no gap and no duplicate."""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, text, update

from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from tenants.scope import unscoped
from tests.integration.invoicing_support import AFTER
from tests.integration.test_billing_cycle_workers import _wait, _worker


def _postpaid_accounts(tenant_id: int, count: int) -> list[int]:
    """Postpaid accounts created in September with a charge in October and in November."""
    from app import ledger
    from app.accounts.models import Account
    from app.accounts.operations import create_account

    ids = []
    with unscoped():
        for i in range(count):
            a = create_account(tenant_id=tenant_id, name=f"Race {i}", email=f"race{i}@customer.example",
                               billing_type="postpaid", credit_limit=Decimal("100"))
            ids.append(a.id)
            for month, amount in ((10, "3.00"), (11, "4.00")):
                posted = ledger.post(a.id, -Decimal(amount), "user_charge", f"account:{a.id}:users:2026-{month}")
                db.session.execute(update(LedgerEntry).where(LedgerEntry.id == posted.entry_id)
                                   .values(created_at=datetime(2026, month, 3)))
        db.session.execute(update(Account).where(Account.id.in_(ids)).values(created_at=datetime(2026, 9, 1)))
        db.session.commit()
    return ids


def test_two_workers_racing_to_finalise_leave_no_gap_and_no_duplicate(app, make_tenant):
    from rq.job import Job

    from app import jobs
    from app.invoicing.models import Invoice
    from workers.invoicing import document_period, enqueue_run, run_job_id

    tenant_id = make_tenant().id
    ids = _postpaid_accounts(tenant_id, 60)
    q = jobs.queue(app)
    args = {"batch_size": 4, "pause": 0.05, "now": AFTER}
    nov = enqueue_run(tenant_id, "2026-11", **args)
    assert enqueue_run(tenant_id, "2026-11", **args) == nov and q.count == 1        # unique job id
    oct_ = enqueue_run(tenant_id, "2026-10", **args)
    again = run_job_id(tenant_id, "2026-11") + "-again"
    q.enqueue(document_period, args=(tenant_id, "2026-11"), kwargs=args, job_id=again)
    workers = [_worker(burst=True), _worker(burst=True)]
    outputs = [_wait(w, timeout=300) for w in workers]
    assert all("Traceback" not in o for o in outputs), outputs
    fetched = [Job.fetch(j, connection=q.connection) for j in (nov, oct_, again)]
    results = [j.return_value() for j in fetched]
    assert all(r is not None for r in results), outputs
    # They really ran at the same time: two of the jobs overlap.
    spans = sorted((j.started_at, j.ended_at) for j in fetched)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), spans
    # Both workers took part (each ran at least one job) and the two November jobs shared its accounts.
    assert sum(r["this_job"] for r in (results[0], results[2])) == len(ids)
    assert results[1]["this_job"] == len(ids)

    db.session.remove()
    with unscoped():
        rows = db.session.execute(select(Invoice.account_id, Invoice.period_key, Invoice.sequence, Invoice.number,
                                         Invoice.status, Invoice.total).where(Invoice.tenant_id == tenant_id)).all()
        last = db.session.execute(text("SELECT last_number FROM invoice_sequences WHERE tenant_id = :t"),
                                  {"t": tenant_id}).scalar_one()
        taxes_or_rounding = db.session.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.kind.in_(("tax", "invoice")), LedgerEntry.account_id.in_(ids))).scalar_one()
        mismatches = balance_mismatches()
    assert len(rows) == 2 * len(ids)
    assert {(a, p) for a, p, *_ in rows} == {(a, p) for a in ids for p in ("2026-10", "2026-11")}
    sequences = sorted(s for _, _, s, *_ in rows)
    assert sequences == list(range(1, 2 * len(ids) + 1))                   # no gap, no duplicate
    assert last == 2 * len(ids)
    assert {n for *_, n, _, _ in rows} == {f"INV-2026-{s:06d}" for s in sequences}
    assert {(p, st, t) for _, p, _, _, st, t in rows} == {("2026-10", "open", Decimal("3.00")),
                                                           ("2026-11", "open", Decimal("4.00"))}
    assert taxes_or_rounding == 0 and mismatches == []
