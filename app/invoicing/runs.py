"""The monthly document run: for one tenant and one *closed* period key, an invoice for each
postpaid account and a statement for each prepaid account whose period with that key has ended.

Keys are the billing schedule's (app/billing/schedule.py): `2026-11` is the month from
1 November of the accounts billed on day 1; `2026-11-15` both the day of the daily accounts
and the month from 15 November of the accounts billed on the 15th. Postpaid accounts are
invoiced per billing period (daily accounts: per day). Prepaid statements are monthly: on the
account's billing day, on day 1 for a daily account (so a key `YYYY-MM` also takes the daily
prepaid accounts). A period is due once it has ended in the account's zone and the local time
has passed the tenant's `issue_hour`; accounts created after the period ended are not in it.

Like the charge run (app/billing/cycle.py): accounts in id order, locked
`FOR NO KEY UPDATE SKIP LOCKED` per batch (two workers share a run), a second blocking pass
for the accounts another transaction held; an `invoice_run_accounts` row marks each account
done in the same transaction as its document, so a rerun (or the same job twice) skips it, and
unique (account, kind, period) stops a second invoice whatever happens. A zero invoice skipped
by the tenant's setting is marked `skipped`: the period is handled and never retried. Within a
batch the drafts are built first and numbered last (one UPDATE … RETURNING per series), so a
tenant's series stays locked only for the end of each batch. Flush, never commit: the job
(workers/invoicing.py) commits once per batch.
"""
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import and_, func, or_, select, text, update

from app.accounts.models import Account
from app.billing.cycle import _insert, targets_of_key, utc_start
from app.bulk import collector_paused
from app.billing.schedule import Period, current_period, period_containing
from app.extensions import db
from app.invoicing import invoices as inv_ops, statements as st_ops
from app.invoicing.models import InvoiceRun, InvoiceRunAccount
from app.timezones import zone
from tenants.models import utcnow

log = logging.getLogger(__name__)
OUTCOMES = ("invoiced", "statement", "skipped", "failed")


def run_job_id(tenant_id: int, key: str) -> str:
    return f"invoice-run-{tenant_id}-{key}"


def previous_period(period: Period, schedule: str, billing_day: int) -> Period:
    return period_containing(period.start - timedelta(days=1), schedule, billing_day)


def closed_keys(tz: str, schedule: str, billing_day: int, billing_type: str, now: datetime) -> list[str]:
    """The key of the last closed document period of such an account at `now`."""
    if billing_type == "prepaid":
        day = billing_day if schedule == "monthly" else 1
        current = current_period(tz, "monthly", day, now)
        return [previous_period(current, "monthly", day).key]
    current = current_period(tz, schedule, billing_day, now)
    return [previous_period(current, schedule, billing_day).key]


def _issue_hour_passed(tz: str, end: date, hour: int, now: datetime) -> bool:
    aware = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    due = datetime.combine(end, datetime.min.time(), zone(tz)) + timedelta(hours=int(hour or 0))
    return aware >= due


def due_keys(tenant_id: int, now: datetime | None = None) -> list[str]:
    """The closed period keys of the tenant's accounts at `now` (one run each)."""
    now = now or datetime.now(timezone.utc)
    combos = db.session.execute(
        select(Account.timezone, Account.billing_schedule, Account.billing_day, Account.billing_type)
        .where(Account.tenant_id == tenant_id, Account.status != "closed").distinct()).all()
    keys = set()
    for tz, schedule, day, billing_type in combos:
        try:
            keys.update(closed_keys(tz, schedule, day, billing_type, now))
        except ValueError as e:
            log.error("tenant %s: accounts with schedule %r day %r get no documents: %s", tenant_id, schedule, day, e)
    return sorted(keys)


def document_targets(key: str) -> list[tuple[str, str, int | None, Period]]:
    """(billing type, schedule, billing day, period) of every kind of account whose document
    period has this key."""
    out = []
    for schedule, day, period in targets_of_key(key):
        out.append(("postpaid", schedule, day, period))
        if schedule == "monthly":
            out.append(("prepaid", "monthly", day, period))
    if len(key) == 7:                      # calendar months: the statements of daily prepaid accounts
        month = period_containing(date(int(key[:4]), int(key[5:7]), 1), "monthly", 1)
        out.append(("prepaid", "daily", None, month))
    return out


@dataclass
class RunPlan:
    run_id: int
    tenant_id: int
    key: str
    condition: object
    periods: dict = field(default_factory=dict)   # (billing type, schedule) -> Period
    settings: dict = field(default_factory=dict)

    def period_of(self, account) -> Period:
        return self.periods[(account.billing_type, account.billing_schedule)]


def _condition(tenant_id: int, key: str, now: datetime, issue_hour: int):
    conds, periods = [], {}
    for billing_type, schedule, day, period in document_targets(key):
        periods[(billing_type, schedule)] = period
        base = [Account.billing_type == billing_type, Account.billing_schedule == schedule]
        if day is not None:
            base.append(Account.billing_day == day)
        zones = db.session.execute(select(Account.timezone).where(
            Account.tenant_id == tenant_id, Account.status != "closed", *base).distinct()).scalars().all()
        for tz in zones:
            if not _issue_hour_passed(tz, period.end, issue_hour, now):
                continue                   # not ended there yet (or before the issue hour)
            conds.append(and_(*base, Account.timezone == tz, Account.created_at < utc_start(period.end, tz)))
    condition = and_(Account.tenant_id == tenant_id, Account.status != "closed", or_(*conds)) if conds else None
    return condition, periods


def start_run(tenant_id: int, key: str, now: datetime | None = None) -> RunPlan:
    """Create the tenant's run for `key` (or find it) and say which accounts it takes. Flushes."""
    now = now or datetime.now(timezone.utc)
    targets_of_key(key)                      # refuse a malformed key before writing
    session = db.session
    session.execute(_insert(session)(InvoiceRun).values(tenant_id=tenant_id, period=key, started_at=utcnow(),
                                                        heartbeat_at=utcnow(), passes=0, invoiced=0, statement=0,
                                                        skipped=0, failed=0)
                    .on_conflict_do_nothing(index_elements=["tenant_id", "period"]))
    run = run_of(tenant_id, key)
    settings = inv_ops.settings_of(tenant_id)
    condition, periods = _condition(tenant_id, key, now, settings["issue_hour"])
    return RunPlan(run.id, tenant_id, key, condition, periods, settings)


def run_of(tenant_id: int, key: str) -> InvoiceRun | None:
    return db.session.execute(select(InvoiceRun).where(InvoiceRun.tenant_id == tenant_id, InvoiceRun.period == key)
                              .execution_options(populate_existing=True)).scalar_one_or_none()


def begin_pass(plan: RunPlan) -> None:
    db.session.execute(update(InvoiceRun).where(InvoiceRun.id == plan.run_id)
                       .values(passes=InvoiceRun.passes + 1, heartbeat_at=utcnow(), finished_at=None)
                       .execution_options(synchronize_session=False))


def _not_done(run_id: int):
    done = select(InvoiceRunAccount.id).where(InvoiceRunAccount.run_id == run_id,
                                              InvoiceRunAccount.account_id == Account.id,
                                              InvoiceRunAccount.outcome != "failed")
    return ~done.exists()


def remaining(plan: RunPlan) -> int:
    if plan.condition is None:
        return 0
    return db.session.execute(select(func.count()).select_from(Account)
                              .where(plan.condition, _not_done(plan.run_id))).scalar_one()


@dataclass
class BatchResult:
    ids: list
    outcomes: dict = field(default_factory=dict)   # account id -> (outcome, reason, invoice id, statement id)

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0


def document_batch(plan: RunPlan, *, after_id: int = 0, batch_size: int = 200, skip_locked: bool = True,
                   exclude=(), now: datetime | None = None) -> BatchResult:
    """Lock the next accounts of the run not done yet, make their documents, mark them. A batch
    that fails is retried account by account (a savepoint each) to record the one that fails."""
    if plan.condition is None:
        return BatchResult([])
    session = db.session
    q = (select(Account).where(plan.condition, Account.id > after_id, _not_done(plan.run_id))
         .order_by(Account.id).limit(batch_size)
         .with_for_update(skip_locked=skip_locked, key_share=True, of=Account)
         .execution_options(populate_existing=True))
    if exclude:
        q = q.where(Account.id.not_in(list(exclude)))
    accounts = list(session.execute(q).scalars())
    result = BatchResult([a.id for a in accounts])
    if not accounts:
        return result
    marks = dict(session.execute(select(InvoiceRunAccount.account_id, InvoiceRunAccount.outcome)
                                 .where(InvoiceRunAccount.run_id == plan.run_id,
                                        InvoiceRunAccount.account_id.in_(result.ids))).all())
    todo = [a for a in accounts if marks.get(a.id) in (None, "failed")]
    try:
        # Thousands of rows and objects per batch, no reference cycles: the cyclic collector
        # would rescan them again and again (app/bulk.py).
        with session.begin_nested(), collector_paused():
            result.outcomes = documents_for(todo, plan, now=now)
    except Exception:
        for a in todo:
            session.expire(a)
        result.outcomes = {}
        for a in todo:
            try:
                with session.begin_nested():
                    result.outcomes.update(documents_for([a], plan, now=now))
            except Exception as e:           # recorded, retried by the next pass; the others go on
                log.exception("invoice run %s: account %s failed", plan.key, a.id)
                session.expire(a)
                result.outcomes[a.id] = ("failed", f"{type(e).__name__}: {e}"[:255], None, None)
    _mark(plan, result.outcomes, {a for a, o in marks.items() if o == "failed"})
    return result


def documents_for(accounts, plan: RunPlan, *, now: datetime | None = None) -> dict:
    """Invoices (postpaid) and statements (prepaid) of these locked accounts for the run's key."""
    outcomes = {}
    by_period: dict[tuple[str, Period], list] = {}
    for a in accounts:
        by_period.setdefault((a.billing_type, plan.period_of(a)), []).append(a)
    skip_zero = bool(plan.settings["skip_zero"])
    for (billing_type, period), group in sorted(by_period.items(), key=lambda kv: (kv[0][0], kv[0][1].start)):
        if billing_type == "postpaid":
            built = inv_ops.build_batch(group, period, skip_zero=skip_zero)
            for account_id in built.skipped:
                outcomes[account_id] = ("skipped", "zero total", None, None)
            issued = inv_ops.finalise_batch(list(built.invoices.values()), computed=built.computed, now=now)
            for inv in issued:
                outcomes[inv.account_id] = ("invoiced", "", inv.id, None)
        else:
            made = st_ops.build_statements(group, period, skip_empty=skip_zero)
            for account_id, s in made.items():
                outcomes[account_id] = ("statement", "", None, s.id) if s is not None else (
                    "skipped", "no activity", None, None)
    return outcomes


def _mark(plan: RunPlan, outcomes: dict, failed_before: set) -> None:
    if not outcomes:
        return
    session = db.session
    now = utcnow()
    marks = sorted(outcomes.items())
    if session.get_bind().dialect.name == "postgresql":
        # One statement with five array parameters (a VALUES list of 200 rows has 1,600).
        cols = list(zip(*[(a, o, r, i, s) for a, (o, r, i, s) in marks]))
        session.execute(text(
            "INSERT INTO invoice_run_accounts (tenant_id, account_id, run_id, outcome, reason, invoice_id,"
            " statement_id, updated_at) SELECT :t, a, :run, o, r, i, s, :now FROM unnest(CAST(:a AS integer[]),"
            " CAST(:o AS varchar[]), CAST(:r AS varchar[]), CAST(:i AS integer[]), CAST(:s AS integer[]))"
            " AS v(a, o, r, i, s) ON CONFLICT (run_id, account_id) DO UPDATE SET outcome = excluded.outcome,"
            " reason = excluded.reason, invoice_id = excluded.invoice_id, statement_id = excluded.statement_id,"
            " updated_at = excluded.updated_at"),
            {"t": plan.tenant_id, "run": plan.run_id, "now": now, "a": list(cols[0]), "o": list(cols[1]),
             "r": list(cols[2]), "i": list(cols[3]), "s": list(cols[4])})
    else:
        stmt = _insert(session)(InvoiceRunAccount).values([
            {"tenant_id": plan.tenant_id, "account_id": account_id, "run_id": plan.run_id, "outcome": outcome,
             "reason": reason, "invoice_id": invoice_id, "statement_id": statement_id, "updated_at": now}
            for account_id, (outcome, reason, invoice_id, statement_id) in marks])
        session.execute(stmt.on_conflict_do_update(index_elements=["run_id", "account_id"], set_={
            "outcome": stmt.excluded.outcome, "reason": stmt.excluded.reason, "invoice_id": stmt.excluded.invoice_id,
            "statement_id": stmt.excluded.statement_id, "updated_at": stmt.excluded.updated_at}))
    counts = {o: 0 for o in OUTCOMES}
    for account_id, (outcome, *_) in outcomes.items():
        counts[outcome] += 1
        if account_id in failed_before:
            counts["failed"] -= 1
    session.execute(update(InvoiceRun).where(InvoiceRun.id == plan.run_id).values(
        heartbeat_at=now, **{o: getattr(InvoiceRun, o) + n for o, n in counts.items() if n})
        .execution_options(synchronize_session=False))


def finish_run(plan: RunPlan) -> bool:
    left = remaining(plan)
    failed = db.session.execute(select(InvoiceRun.failed).where(InvoiceRun.id == plan.run_id)).scalar_one()
    done = left <= failed
    db.session.execute(update(InvoiceRun).where(InvoiceRun.id == plan.run_id)
                       .values(heartbeat_at=utcnow(), finished_at=utcnow() if done else None)
                       .execution_options(synchronize_session=False))
    return done


def summary(plan: RunPlan, **extra) -> dict:
    run = run_of(plan.tenant_id, plan.key)
    return {"run_id": run.id, "period": plan.key, **{o: getattr(run, o) for o in OUTCOMES}, **extra}

