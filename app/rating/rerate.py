"""Re-rating calls after the cause of their rating error was fixed (a rate added, a country
opened, a plan given a sheet).

A call rated with an error is marked rated (rated_at set), costs 0 and charged nothing, so
the catch-up job never takes it again. `rerate_calls(ids)` clears such a call's result and
rates it again through `app.rating.cdr.rate_calls`, the same path as every call: the same
rules, the same bundle counters and the same ledger key `call:<call id>`. A call rated
without an error is left alone (its charge stands), and if a `call:<id>` entry exists
anyway, the ledger's unique key turns the second charge into nothing: rating twice never
charges twice. Calls not rated yet are rated as the catch-up job would.

Many calls at once ("every unrated call matching the filter") is a `CallRerating` run:
a row with the filter, worked by the job `workers.rating.rerate_matching_calls` in batches
of `BATCH` calls (one commit each), its progress in the job meta and its outcome on the row.
Plain functions taking ids; they flush, never commit (the job commits per batch).
"""
import logging
import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from app import audit
from app.calls import browser
from app.calls.models import Call
from app.extensions import db
from app.jobs import set_progress
from app.rating.cdr import RatingSummary, rate_calls
from tenants.mixins import TenantOwned
from tenants.models import utcnow
from tenants.scope import tenant_scope, unscoped

log = logging.getLogger(__name__)

BATCH = 2000


class CallRerating(TenantOwned, db.Model):
    """One "re-rate every unrated call matching this filter" request and its outcome."""
    __tablename__ = "call_reratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The query-string arguments of the calls browser that chose the calls.
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    # True when a platform login asked: every tenant's calls; else the tenant and its subtree.
    all_tenants: Mapped[bool] = mapped_column(default=False)
    # queued -> running -> done | failed
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total: Mapped[int] = mapped_column(default=0)        # calls to re-rate when the run started
    rated: Mapped[int] = mapped_column(default=0)        # given a result without an error
    charged: Mapped[int] = mapped_column(default=0)      # ledger debits written
    errors: Mapped[int] = mapped_column(default=0)       # still rated with an error
    skipped: Mapped[int] = mapped_column(default=0)      # rated meanwhile by someone else
    message: Mapped[str] = mapped_column(String(255), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


_RESULT_COLUMNS = dict(rated_at=None, rating_error="", country="", rate_id=None, cost=None, bundle_seconds=0,
                       charged_seconds=0, buy_cost=None)


def rerate_calls(call_ids) -> RatingSummary:
    """Rate again the given calls that carry a rating error, and rate those not rated yet.

    Calls outside the scope, or rated without an error, are skipped (summary.skipped).
    Flushes, never commits."""
    ids = sorted({int(i) for i in call_ids})
    if not ids:
        return RatingSummary()
    # An ORM UPDATE: the scope hook keeps it to the calls this login may see. On PostgreSQL
    # it locks the rows, so a second re-rate of the same call waits, then finds it rated.
    db.session.execute(
        update(Call).where(Call.id.in_(ids), Call.rating_error != "").values(**_RESULT_COLUMNS)
        .execution_options(synchronize_session=False))
    for call_id in ids:
        obj = db.session.identity_map.get(db.session.identity_key(Call, call_id))
        if obj is not None:
            db.session.expire(obj)
    return rate_calls(ids)


def rerate_one(call: Call) -> RatingSummary:
    """Re-rate one call of the scope (the browser's per-call action), audited. Flushes only."""
    before = call.rating_error or ("not rated yet" if call.rated_at is None else "")
    summary = rerate_calls([call.id])
    db.session.refresh(call)
    audit.record("call.rerate", call, before=before, after=call.rating_error or "",
                 cost=call.cost, charged=summary.charged)
    return summary


def start_rerating(cq: "browser.CallQuery", *, tenant_id: int, all_tenants: bool,
                   created_by_id: int | None) -> CallRerating:
    """Record a run for every call matching the filter that needs rating; the caller commits
    and enqueues `workers.rating.rerate_matching_calls(run.id, job_id=run.job_id)`."""
    run = CallRerating(tenant_id=tenant_id, job_id=f"call-rerate-{uuid.uuid4().hex}",
                       filters=cq.filter_args(), all_tenants=all_tenants, created_by_id=created_by_id)
    db.session.add(run)
    db.session.flush()
    audit.record("calls.rerate_requested", run, filters=run.filters)
    return run


def _matching(cq, resolved, after_id: int, limit: int) -> list[int]:
    clauses = browser.where_clauses(cq, resolved) + [browser.needs_rating_clause()]
    return list(db.session.execute(
        select(Call.id).where(*clauses, Call.id > after_id).order_by(Call.id).limit(limit)).scalars())


def count_needing(cq, resolved) -> int:
    """How many calls of the filter are unrated or carry a rating error."""
    clauses = browser.where_clauses(cq, resolved) + [browser.needs_rating_clause()]
    return db.session.execute(select(func.count()).select_from(Call).where(*clauses)).scalar_one()


def run_rerating(run_id: int, batch: int = BATCH) -> dict:
    """The job: re-rate the run's calls batch by batch, one commit per batch, with progress."""
    with unscoped():
        run = db.session.execute(select(CallRerating).where(CallRerating.id == run_id)).scalar_one_or_none()
        if run is None or run.finished:
            db.session.rollback()
            return {"status": "missing" if run is None else run.status}
        tenant_id, all_tenants, filters = run.tenant_id, run.all_tenants, dict(run.filters or {})
        run.status = "running"
        db.session.commit()

    def scope():
        return unscoped() if all_tenants else tenant_scope(tenant_id)

    totals = RatingSummary()
    try:
        with scope():
            cq = browser.CallQuery.from_args(filters)
            resolved = browser.resolve(cq)
            total = count_needing(cq, resolved)
            db.session.commit()
        _save(run_id, total=total)
        set_progress(0, total, stage="Re-rating…")
        last, done = 0, 0
        while True:
            with scope():
                ids = _matching(cq, resolved, last, batch)
                if not ids:
                    db.session.commit()
                    break
                summary = rerate_calls(ids)
                db.session.commit()
            last = ids[-1]
            done += len(ids)
            for k in ("rated", "charged", "errors", "skipped"):
                setattr(totals, k, getattr(totals, k) + getattr(summary, k))
            set_progress(min(done, total), total, stage=f"Re-rated {done:,} of {total:,} calls")
            if len(ids) < batch:
                break
    except browser.FilterError as e:
        db.session.rollback()
        _save(run_id, status="failed", message=str(e)[:255], finished_at=utcnow())
        return {"status": "failed"}
    except Exception:
        db.session.rollback()
        log.exception("re-rating run %s failed", run_id)
        _save(run_id, status="failed", message="The re-rating stopped on an error; see the worker's log.",
              finished_at=utcnow(), **_counts(totals))
        raise
    rated_ok = totals.rated - totals.errors
    message = (f"{rated_ok:,} call{'s' if rated_ok != 1 else ''} rated, {totals.charged:,} charged; "
               f"{totals.errors:,} still with a rating error.")
    _save(run_id, status="done", message=message, finished_at=utcnow(), **_counts(totals))
    return {"status": "done", **_counts(totals)}


def _counts(s: RatingSummary) -> dict:
    return {"rated": s.rated - s.errors, "charged": s.charged, "errors": s.errors, "skipped": s.skipped}


def _save(run_id: int, **values) -> None:
    with unscoped():
        db.session.execute(update(CallRerating).where(CallRerating.id == run_id).values(**values)
                           .execution_options(synchronize_session=False))
        db.session.commit()
