"""The billing cycle: recurring charges at each period start, autorefill, owed charges.

A *run* charges one tenant's accounts for one period key (app/billing/schedule.py): `2026-12`
is the month of the accounts billed on day 1; `2026-12-15` is both the day of the daily
accounts and the month starting that day of the accounts billed on the 15th. An account is in
a run once its period has started in its own time zone and it existed before the period ended.

For each account, in one transaction with the other accounts of its batch (docs/billing-cycle.md):
1. autorefill: a prepaid balance below its target (`initial_balance`) is topped up to it,
   ledger kind `refill`, key `account:<id>:refill:<period>` (one per period);
2. the recurring charges, in order: users x cost per user (the count in force at the period
   start), each assigned number's monthly price, each extra with occurrences in the period.
   Each is a `recurring_charges` row unique on (account, kind, item, period) and a ledger
   entry keyed `account:<id>:users:<period>`, `account:<id>:number:<number id>:<period>`,
   `account:<id>:extra:<extra id>:<period>`: the keys onboarding and number assignment use,
   so a first (prorated) charge of the current month is found and not taken twice;
3. prepaid: a charge the balance does not cover is kept *owed* (as is every later one, so they
   apply in order), the account is suspended with the reason "unpaid recurring charges" and
   told by email. Any later ledger credit queues `apply_owed` (app/ledger.py), which takes the
   owed charges in order while the balance covers them and lifts that suspension when none
   is left. Postpaid: every charge is taken; past the credit limit the account is suspended
   ("credit limit exceeded") until a credit brings it back within the limit;
4. a `charge_run_accounts` row (run, account) marks the account done, in the same transaction.

Accounts are taken in id order, locked `FOR NO KEY UPDATE SKIP LOCKED`, so two workers on the
same run share the accounts instead of waiting; a second, blocking pass picks up those another
transaction held. A killed worker loses only its uncommitted batch; the next run skips what
is marked. Flush, never commit: the job (workers/billing.py) commits once per batch.
"""
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timezone
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app import audit, ledger, money
from app.accounts.models import Account
from app.billing import user_changes
from app.billing.extras import Extra, occurrences_between
from app.billing.models import ServicePlan
from app.billing.schedule import Period, current_period, local_date, period_containing
from app.conflicts import FieldError
from app.extensions import db
from app.timezones import zone
from app.money import MONEY_SCALE
from tenants.mixins import AccountOwned, TenantOwned
from tenants.models import utcnow

log = logging.getLogger(__name__)

REASON_UNPAID = "unpaid recurring charges"
REASON_CREDIT_LIMIT = "credit limit exceeded"
BILLING_REASONS = (REASON_UNPAID, REASON_CREDIT_LIMIT)
CHARGE_KINDS = ("users", "number", "extra")
LEDGER_KIND = {"users": "user_charge", "number": "number_charge", "extra": "recurring"}
STATUSES = ("charged", "owed", "covered")   # covered: the key was already charged (first month)
OUTCOMES = ("charged", "skipped", "owed", "suspended", "failed")


class ChargeRun(TenantOwned, db.Model):
    """One tenant's run for one period key; counts add up over every pass of the run."""
    __tablename__ = "charge_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    passes: Mapped[int] = mapped_column(default=0)
    charged: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    owed: Mapped[int] = mapped_column(default=0)
    suspended: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)


class ChargeRunAccount(AccountOwned, db.Model):
    """An account's outcome in a run; any outcome but `failed` means done for that period."""
    __tablename__ = "charge_run_accounts"
    __table_args__ = (UniqueConstraint("run_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("charge_runs.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecurringCharge(AccountOwned, db.Model):
    """One recurring charge: its natural key (account, kind, item, period) is unique."""
    __tablename__ = "recurring_charges"
    __table_args__ = (UniqueConstraint("account_id", "kind", "item", "period"),
                      Index("ix_recurring_charges_account_status", "account_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))       # users | number | extra
    item: Mapped[int] = mapped_column(default=0)         # 0 | number id | extra id
    period: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, MONEY_SCALE))
    description: Mapped[str] = mapped_column(String(255), default="")
    ledger_key: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(10))      # charged | owed | covered
    run_id: Mapped[int | None] = mapped_column(ForeignKey("charge_runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column()


# --- what is due ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Due:
    kind: str
    item: int
    amount: Decimal
    description: str
    ledger_key: str


def ledger_key(account_id: int, kind: str, item: int, period_key: str) -> str:
    if kind == "users":
        return f"account:{account_id}:users:{period_key}"
    return f"account:{account_id}:{kind}:{item}:{period_key}"


def users_at(plan_users: int, changes: list[tuple[datetime, int]], start_utc: datetime) -> int:
    """The user count in force at `start_utc`: the `before` of the first change made at or
    after it (changes: (when, before) of the account's user-count orders), else today's.
    A scheduled decrease counts as made just before the period it starts
    (user_changes.change_moment), so that period is charged the new count."""
    later = [before for when, before in sorted(changes) if when >= start_utc]
    return later[0] if later else plan_users


def due_charges(account, period: Period, *, users: int, cost_per_user, numbers, extras) -> list[Due]:
    cur = account.currency
    out = []
    cost = money.to_decimal(cost_per_user or 0)
    if users > 0 and cost > 0:
        amount = money.quantize(cost * users, cur)
        out.append(Due("users", 0, amount, f"{users} user{'s' if users != 1 else ''} × "
                       f"{money.format_money(cost, cur)}, {period.key}",
                       ledger_key(account.id, "users", 0, period.key)))
    for n in sorted(numbers, key=lambda n: n.id):
        price = money.to_decimal(n.sell_monthly or 0)
        if price > 0:
            out.append(Due("number", n.id, money.quantize(price, cur), f"Number {n.number} monthly, {period.key}",
                           ledger_key(account.id, "number", n.id, period.key)))
    for x in sorted(extras, key=lambda x: x.id):
        times = occurrences_between(x.start_date, x.end_date, x.period, period.start, period.end)
        if times:
            amount = money.quantize(money.to_decimal(x.amount) * times, cur)
            label = f"{x.description} ({x.period}{f' × {times}' if times > 1 else ''}), {period.key}"
            out.append(Due("extra", x.id, amount, label[:255], ledger_key(account.id, "extra", x.id, period.key)))
    return out


# --- which accounts a run takes ----------------------------------------------------------------

def targets_of_key(key: str) -> list[tuple[str, int | None, Period]]:
    """(schedule, billing day, period) of every kind of account whose period has this key."""
    try:
        if len(key) == 7:
            start = date(int(key[:4]), int(key[5:7]), 1)
            out = [("monthly", 1, period_containing(start, "monthly", 1))]
        elif len(key) == 10:
            start = date.fromisoformat(key)
            out = [("daily", None, period_containing(start, "daily"))]
            if 2 <= start.day <= 28:
                out.append(("monthly", start.day, period_containing(start, "monthly", start.day)))
        else:
            raise ValueError(key)
    except ValueError:
        raise ValueError(f"{key!r} is not a period key (YYYY-MM or YYYY-MM-DD)") from None
    return [t for t in out if t[2].key == key]


def utc_start(day: date, tz_name) -> datetime:
    """Midnight of `day` in the zone, as naive UTC (how timestamps are stored)."""
    return datetime.combine(day, dtime(), zone(tz_name)).astimezone(timezone.utc).replace(tzinfo=None)


@dataclass
class RunPlan:
    run_id: int
    tenant_id: int
    key: str
    condition: object            # SQL: the accounts of this run (None: none yet)
    periods: dict = field(default_factory=dict)   # schedule -> Period


def _run_condition(tenant_id: int, key: str, now: datetime):
    conds, periods = [], {}
    for schedule, day, period in targets_of_key(key):
        periods[schedule] = period
        base = [Account.billing_schedule == schedule]
        if day is not None:
            base.append(Account.billing_day == day)
        zones = db.session.execute(
            select(Account.timezone).where(Account.tenant_id == tenant_id, Account.status != "closed", *base)
            .distinct()).scalars().all()
        for tz in zones:
            if local_date(tz, now) < period.start:
                continue                  # the period has not started there yet
            conds.append(and_(*base, Account.timezone == tz, Account.created_at < utc_start(period.end, tz)))
    condition = and_(Account.tenant_id == tenant_id, Account.status != "closed", or_(*conds)) if conds else None
    return condition, periods


def due_run_keys(tenant_id: int, now: datetime | None = None) -> list[str]:
    """The period keys current now for the tenant's accounts (one run each)."""
    now = now or datetime.now(timezone.utc)
    combos = db.session.execute(
        select(Account.timezone, Account.billing_schedule, Account.billing_day)
        .where(Account.tenant_id == tenant_id, Account.status != "closed").distinct()).all()
    keys = set()
    for tz, schedule, day in combos:
        try:
            keys.add(current_period(tz, schedule, day, now).key)
        except ValueError as e:     # a schedule or billing day no form could have saved
            log.error("tenant %s: accounts with billing schedule %r day %r are not billed: %s",
                      tenant_id, schedule, day, e)
    return sorted(keys)


def _insert(session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def start_run(tenant_id: int, key: str, now: datetime | None = None) -> RunPlan:
    """Create the tenant's run for `key` (or find it) and say which accounts it takes. Flushes."""
    now = now or datetime.now(timezone.utc)
    targets_of_key(key)                       # refuse a malformed key before writing
    session = db.session
    session.execute(_insert(session)(ChargeRun).values(tenant_id=tenant_id, period=key, started_at=utcnow(),
                                                       heartbeat_at=utcnow(), passes=0)
                    .on_conflict_do_nothing(index_elements=["tenant_id", "period"]))
    run = session.execute(select(ChargeRun).where(ChargeRun.tenant_id == tenant_id, ChargeRun.period == key)
                          .execution_options(populate_existing=True)).scalar_one()
    condition, periods = _run_condition(tenant_id, key, now)
    return RunPlan(run.id, tenant_id, key, condition, periods)


def begin_pass(plan: RunPlan) -> None:
    """A pass of the run starts (there is something to do): counted, no longer finished."""
    db.session.execute(update(ChargeRun).where(ChargeRun.id == plan.run_id)
                       .values(passes=ChargeRun.passes + 1, heartbeat_at=utcnow(), finished_at=None)
                       .execution_options(synchronize_session=False))


@dataclass
class BatchResult:
    ids: list[int]
    outcomes: dict = field(default_factory=dict)     # account id -> (outcome, reason)

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0


def _not_done(run_id: int):
    done = select(ChargeRunAccount.id).where(ChargeRunAccount.run_id == run_id,
                                             ChargeRunAccount.account_id == Account.id,
                                             ChargeRunAccount.outcome != "failed")
    return ~done.exists()


def remaining(plan: RunPlan) -> int:
    if plan.condition is None:
        return 0
    return db.session.execute(select(func.count()).select_from(Account)
                              .where(plan.condition, _not_done(plan.run_id))).scalar_one()


def charge_batch(plan: RunPlan, *, after_id: int = 0, batch_size: int = 200, skip_locked: bool = True,
                 exclude=(), now: datetime | None = None) -> BatchResult:
    """Lock the next accounts of the run not done yet, charge each (a savepoint each: one
    account's failure is recorded and the others go on), mark them. Flushes."""
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
    # Now that they are locked, look again (a fresh statement): another worker may have
    # finished some of them while we waited for their lock.
    marks = dict(session.execute(select(ChargeRunAccount.account_id, ChargeRunAccount.outcome)
                                 .where(ChargeRunAccount.run_id == plan.run_id,
                                        ChargeRunAccount.account_id.in_(result.ids))).all())
    todo = [a for a in accounts if marks.get(a.id) in (None, "failed")]
    # Scheduled user-count decreases that start by this period apply first, in the same
    # transaction as the charges, so the users charge uses the new count (user_changes.py).
    changes = user_changes.due_for(todo, plan.periods)
    try:
        # The whole batch at once: a few statements and one ledger.post_many for all of it.
        with session.begin_nested():
            for account in todo:
                if account.id in changes:
                    user_changes.apply_due(changes[account.id], account)
            context = _batch_context([a.id for a in todo])
            result.outcomes = charge_accounts(todo, plan, context)
    except Exception:
        # Something failed: account by account (a savepoint each), to record the one that fails.
        for account in todo:
            session.expire(account)
        for change in changes.values():
            session.expire(change)
        context = _batch_context([a.id for a in todo])
        result.outcomes = {}
        for account in todo:
            period = plan.periods[account.billing_schedule]
            try:
                with session.begin_nested():
                    own = context
                    if account.id in changes and user_changes.apply_due(changes[account.id], account):
                        own = None                          # its plan and orders changed: read them again
                    outcome = charge_account(account, period, plan.run_id, own)
            except Exception as e:    # recorded, retried by the next run; the others go on
                session.expire(account)
                result.outcomes[account.id] = ("failed", f"{type(e).__name__}: {e}"[:255])
            else:
                result.outcomes[account.id] = (outcome, "")
    _mark(plan, result.outcomes, {a: o for a, o in marks.items() if o == "failed"})
    return result


def charge_accounts(accounts, plan: RunPlan, context: dict) -> dict:
    """`charge_account` for a whole batch of locked accounts, with the same rules and keys:
    what is owed and what is taken is decided in Python from the locked balances, the charge
    rows go in by one INSERT … ON CONFLICT DO NOTHING, the ledger entries (refills first) by
    one `ledger.post_many`. Returns {account id: (outcome, "")}."""
    session = db.session
    ids = [a.id for a in accounts]
    if not ids:
        return {}
    owing_ids = set(session.execute(select(RecurringCharge.account_id).where(
        RecurringCharge.account_id.in_(ids), RecurringCharge.status == "owed").distinct()).scalars())
    dues = {}
    for a in accounts:
        period = plan.periods[a.billing_schedule]
        sp = context["plans"].get(a.id)
        users = users_at(sp.users, context["changes"].get(a.id, []), utc_start(period.start, a.timezone)) if sp else 0
        dues[a.id] = (period, due_charges(a, period, users=users, cost_per_user=sp.cost_per_user if sp else 0,
                                          numbers=context["numbers"].get(a.id, []),
                                          extras=context["extras"].get(a.id, [])))
    keys = {f"account:{a}:refill:{p.key}" for a, (p, _) in dues.items()}
    keys |= {d.ledger_key for _, due in dues.values() for d in due}
    taken = set(map(tuple, session.execute(select(ledger.LedgerEntry.account_id, ledger.LedgerEntry.idempotency_key).where(
        ledger.LedgerEntry.account_id.in_(ids), ledger.LedgerEntry.idempotency_key.in_(sorted(keys))))))
    existing = set(map(tuple, session.execute(select(RecurringCharge.account_id, RecurringCharge.kind, RecurringCharge.item,
                                          RecurringCharge.period).where(
        RecurringCharge.account_id.in_(ids),
        RecurringCharge.period.in_(sorted({p.key for p, _ in dues.values()}))))))
    now = utcnow()
    rows, refills, charges, state = [], [], [], {}
    for a in accounts:
        period, due = dues[a.id]
        prepaid = a.billing_type == "prepaid"
        balance = a.balance
        target = money.to_decimal(a.initial_balance or 0)
        refill_key = f"account:{a.id}:refill:{period.key}"
        if prepaid and a.autorefill and target > 0 and balance < target and (a.id, refill_key) not in taken:
            refills.append(ledger.Entry(a.id, target - balance, "refill", refill_key,
                                        f"Autorefill to {money.format_money(target, a.currency)}, {period.key}"))
            balance = target
        owing = prepaid and a.id in owing_ids
        charged = owed = 0
        for d in due:
            if (a.id, d.kind, d.item, period.key) in existing:
                continue                                  # charged (or kept owed) before
            if (a.id, d.ledger_key) in taken:
                status = "covered"
            elif prepaid and (owing or balance < d.amount):
                status, owing, owed = "owed", True, owed + 1
            else:
                status, charged = "charged", charged + 1
                balance -= d.amount
                charges.append(((a.id, d.kind, d.item), ledger.Entry(a.id, -d.amount, LEDGER_KIND[d.kind],
                                                                     d.ledger_key, d.description)))
            rows.append({"tenant_id": a.tenant_id, "account_id": a.id, "kind": d.kind, "item": d.item,
                         "period": period.key, "amount": d.amount, "description": d.description[:255],
                         "ledger_key": d.ledger_key, "status": status, "run_id": plan.run_id, "created_at": now,
                         "applied_at": now if status == "charged" else None})
        state[a.id] = (charged, owed)
    inserted = set()
    if rows:
        inserted = set(map(tuple, session.execute(
            _insert(session)(RecurringCharge).values(rows)
            .on_conflict_do_nothing(index_elements=["account_id", "kind", "item", "period"])
            .returning(RecurringCharge.account_id, RecurringCharge.kind, RecurringCharge.item))))
    # A row another transaction wrote meanwhile (an extra added at this moment) is theirs to charge.
    ledger.post_many(refills + [e for key, e in charges if key in inserted])
    outcomes = {}
    for a in accounts:
        charged, owed = state[a.id]
        if owed:
            total = owed_total(a.id)
            if a.status == "active":
                _suspend(a, REASON_UNPAID)
                _notify(a, "charges_unpaid", total=total)
                outcomes[a.id] = ("suspended", "")
                continue
            _notify(a, "charges_unpaid", total=total)
            outcomes[a.id] = ("owed", "")
            continue
        if a.billing_type != "prepaid" and a.status == "active" and a.balance + a.credit_limit < 0:
            _suspend(a, REASON_CREDIT_LIMIT)
            _notify(a, "credit_limit_exceeded")
            outcomes[a.id] = ("suspended", "")
            continue
        outcomes[a.id] = ("charged" if charged else "skipped", "")
    return outcomes


def _batch_context(account_ids: list[int]) -> dict:
    """Plans, numbers, extras and user-count changes of a batch: four queries, not 4 x N."""
    from app.billing.orders import Order
    from app.numbers.models import Number

    ctx = {"plans": {}, "numbers": {}, "extras": {}, "changes": {}}
    if not account_ids:
        return ctx
    for p in db.session.execute(select(ServicePlan).where(ServicePlan.account_id.in_(account_ids))).scalars():
        ctx["plans"][p.account_id] = p
    for n in db.session.execute(select(Number).where(Number.account_id.in_(account_ids),
                                                     Number.status == "assigned")).scalars():
        ctx["numbers"].setdefault(n.account_id, []).append(n)
    for x in db.session.execute(select(Extra).where(Extra.account_id.in_(account_ids))).scalars():
        ctx["extras"].setdefault(x.account_id, []).append(x)
    for o in db.session.execute(select(Order).where(Order.account_id.in_(account_ids), Order.kind == "users",
                                                    Order.status == "processed")).scalars():
        try:
            before = int((o.details or {}).get("before"))
        except (TypeError, ValueError):
            continue
        ctx["changes"].setdefault(o.account_id, []).append((user_changes.change_moment(o), before))
    return ctx


def _mark(plan: RunPlan, outcomes: dict, failed_before: dict) -> None:
    if not outcomes:
        return
    session = db.session
    now = utcnow()
    stmt = _insert(session)(ChargeRunAccount).values([
        {"tenant_id": plan.tenant_id, "account_id": account_id, "run_id": plan.run_id, "outcome": outcome,
         "reason": reason, "updated_at": now} for account_id, (outcome, reason) in sorted(outcomes.items())])
    session.execute(stmt.on_conflict_do_update(index_elements=["run_id", "account_id"], set_={
        "outcome": stmt.excluded.outcome, "reason": stmt.excluded.reason, "updated_at": stmt.excluded.updated_at}))
    counts = {o: 0 for o in OUTCOMES}
    for account_id, (outcome, _) in outcomes.items():
        counts[outcome] += 1
        if account_id in failed_before:
            counts["failed"] -= 1             # a retried failure now counts as what it became
    session.execute(update(ChargeRun).where(ChargeRun.id == plan.run_id).values(
        heartbeat_at=now, **{o: getattr(ChargeRun, o) + n for o, n in counts.items() if n})
        .execution_options(synchronize_session=False))


def finish_run(plan: RunPlan) -> bool:
    """Mark the run finished when no account of it is left to do (failed ones stay to retry)."""
    left = remaining(plan)
    failed = db.session.execute(select(ChargeRun.failed).where(ChargeRun.id == plan.run_id)).scalar_one()
    done = left <= failed
    db.session.execute(update(ChargeRun).where(ChargeRun.id == plan.run_id)
                       .values(heartbeat_at=utcnow(), finished_at=utcnow() if done else None)
                       .execution_options(synchronize_session=False))
    return done


def run_of(tenant_id: int, key: str) -> ChargeRun | None:
    return db.session.execute(select(ChargeRun).where(ChargeRun.tenant_id == tenant_id, ChargeRun.period == key)
                              .execution_options(populate_existing=True)).scalar_one_or_none()


# --- one account -------------------------------------------------------------------------------

def autorefill(account, period: Period):
    """Top a prepaid balance below its target up to it, once per period (before the charges)."""
    target = money.to_decimal(account.initial_balance or 0)
    if account.billing_type != "prepaid" or not account.autorefill or target <= 0:
        return None
    if account.balance >= target:
        return None
    return ledger.post(account.id, target - account.balance, "refill", f"account:{account.id}:refill:{period.key}",
                       description=f"Autorefill to {money.format_money(target, account.currency)}, {period.key}")


def has_owed(account_id: int) -> bool:
    return db.session.execute(select(RecurringCharge.id).where(RecurringCharge.account_id == account_id,
                                                               RecurringCharge.status == "owed").limit(1)).first() is not None


def _taken_keys(account_id: int, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(db.session.execute(select(ledger.LedgerEntry.idempotency_key).where(
        ledger.LedgerEntry.account_id == account_id, ledger.LedgerEntry.idempotency_key.in_(keys))).scalars())


def _record(account, period_key: str, d: Due, status: str, run_id: int | None) -> bool:
    """Insert the charge's row under its natural key; False if the key was already there."""
    session = db.session
    stmt = (_insert(session)(RecurringCharge)
            .values(tenant_id=account.tenant_id, account_id=account.id, kind=d.kind, item=d.item, period=period_key,
                    amount=d.amount, description=d.description[:255], ledger_key=d.ledger_key, status=status,
                    run_id=run_id, created_at=utcnow(), applied_at=utcnow() if status == "charged" else None)
            .on_conflict_do_nothing(index_elements=["account_id", "kind", "item", "period"])
            .returning(RecurringCharge.id))
    return session.execute(stmt).scalar() is not None


def charge_account(account, period: Period, run_id: int | None, context: dict | None = None) -> str:
    """Autorefill, then every recurring charge due for `period` not charged yet. The caller
    holds the account's row lock. Returns the outcome: charged, skipped, owed or suspended."""
    if context is None:
        context = _batch_context([account.id])
    autorefill(account, period)
    plan = context["plans"].get(account.id)
    users = 0
    if plan is not None:
        users = users_at(plan.users, context["changes"].get(account.id, []), utc_start(period.start, account.timezone))
    due = due_charges(account, period, users=users, cost_per_user=plan.cost_per_user if plan else 0,
                      numbers=context["numbers"].get(account.id, []), extras=context["extras"].get(account.id, []))
    taken = _taken_keys(account.id, [d.ledger_key for d in due])
    prepaid = account.billing_type == "prepaid"
    owing = prepaid and has_owed(account.id)
    balance = account.balance
    charged = owed = 0
    for d in due:
        if d.ledger_key in taken:
            _record(account, period.key, d, "covered", run_id)
            continue
        status = "owed" if prepaid and (owing or balance < d.amount) else "charged"
        if not _record(account, period.key, d, status, run_id):
            continue                                    # charged (or kept owed) before
        if status == "owed":
            owing, owed = True, owed + 1
            continue
        ledger.post(account.id, -d.amount, LEDGER_KIND[d.kind], d.ledger_key, description=d.description)
        balance -= d.amount
        charged += 1
    if owed:
        total = owed_total(account.id)
        if account.status == "active":
            _suspend(account, REASON_UNPAID)
            _notify(account, "charges_unpaid", total=total)
            return "suspended"
        _notify(account, "charges_unpaid", total=total)
        return "owed"
    if not prepaid and account.status == "active" and account.balance + account.credit_limit < 0:
        _suspend(account, REASON_CREDIT_LIMIT)
        _notify(account, "credit_limit_exceeded")
        return "suspended"
    return "charged" if charged else "skipped"


def _suspend(account, reason: str) -> None:
    from app.accounts.operations import set_account_status

    set_account_status(account, "suspend", reason=reason)


def _notify(account, kind: str, **context) -> None:
    from app.notifications.outbox import billing_notice

    billing_notice(account, kind, **context)


# --- owed charges --------------------------------------------------------------------------------

def owed_charges(account_id: int) -> list[RecurringCharge]:
    return list(db.session.execute(select(RecurringCharge).where(
        RecurringCharge.account_id == account_id, RecurringCharge.status == "owed").order_by(RecurringCharge.id)).scalars())


def owed_total(account_id: int) -> Decimal:
    return db.session.execute(select(func.coalesce(func.sum(RecurringCharge.amount), 0)).where(
        RecurringCharge.account_id == account_id, RecurringCharge.status == "owed")).scalar_one()


@dataclass
class Applied:
    applied: int = 0
    left: int = 0
    reactivated: bool = False


def apply_owed(account_id: int) -> Applied:
    """After a credit: take the owed charges in order while the balance covers them; lift the
    cycle's own suspension when nothing is owed (or a postpaid account is back within its limit)."""
    account = db.session.execute(select(Account).where(Account.id == account_id)
                                 .with_for_update(key_share=True)
                                 .execution_options(populate_existing=True)).scalar_one_or_none()
    result = Applied()
    if account is None or account.status == "closed":
        return result
    prepaid = account.billing_type == "prepaid"
    for c in owed_charges(account_id):
        if prepaid and account.balance < c.amount:
            break
        ledger.post(account.id, -c.amount, LEDGER_KIND[c.kind], c.ledger_key, description=c.description)
        c.status, c.applied_at = "charged", utcnow()
        result.applied += 1
    db.session.flush()
    result.left = len(owed_charges(account_id))
    if result.applied:
        audit.record("account.owed_charges_applied", account, applied=result.applied, left=result.left)
    if account.status == "suspended" and (
            (account.status_reason == REASON_UNPAID and result.left == 0)
            or (account.status_reason == REASON_CREDIT_LIMIT and account.balance + account.credit_limit >= 0)):
        from app.accounts.operations import set_account_status

        set_account_status(account, "enable")
        _notify(account, "reactivated")
        result.reactivated = True
    return result


def charge_new_extra(account, extra: Extra, *, created_by_id: int | None = None) -> Decimal:
    """An extra added mid-period: charge its occurrences left in the current period now,
    under the key the period run uses. A prepaid balance must cover it."""
    period = current_period(account.timezone, account.billing_schedule, account.billing_day)
    due = due_charges(account, period, users=0, cost_per_user=0, numbers=[], extras=[extra])
    if not due:
        return Decimal(0)
    d = due[0]
    if account.billing_type == "prepaid" and (account.balance < d.amount or has_owed(account.id)):
        raise FieldError("amount", (
            f"The balance {money.format_money(account.balance, account.currency)} does not cover this period's "
            f"charge of {money.format_money(d.amount, account.currency)} for this extra. Add credit first, "
            "or start the extra with the next period."))
    if _record(account, period.key, d, "charged", None):
        ledger.post(account.id, -d.amount, LEDGER_KIND[d.kind], d.ledger_key, description=d.description,
                    created_by_id=created_by_id)
    return d.amount
