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
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import (ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, and_, any_, bindparam, cast,
                        func, or_, select, text, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app import audit, ledger, money
from app.bulk import NUMERIC_BINARY
from app.accounts.models import Account
from app.billing import user_changes
from app.billing.extras import Extra, occurrences_between
from app.billing.models import ServicePlan
from app.billing.schedule import Period, current_period, local_date, period_containing
from app.conflicts import FieldError
from app.extensions import db
from app.timezones import zone
from app.money import MONEY_SCALE
from app.period_runs import PeriodRun
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
BATCH_SIZE = 2000      # accounts per transaction of a run


class ChargeRun(PeriodRun, TenantOwned, db.Model):
    """One tenant's run for one period key; counts add up over every pass of the run."""
    __tablename__ = "charge_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "period"),)

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


def begin_pass(plan: RunPlan) -> int:
    """A pass of the run starts (there is something to do): counted, no longer finished.
    Returns the pass's number."""
    return db.session.execute(update(ChargeRun).where(ChargeRun.id == plan.run_id)
                              .values(passes=ChargeRun.passes + 1, heartbeat_at=utcnow(), finished_at=None)
                              .returning(ChargeRun.passes)
                              .execution_options(synchronize_session=False)).scalar_one()


def marked(plan: RunPlan) -> int:
    """How many of the run's accounts are marked (any outcome, over every pass and job)."""
    run = db.session.execute(select(ChargeRun.charged, ChargeRun.skipped, ChargeRun.owed, ChargeRun.suspended,
                                    ChargeRun.failed).where(ChargeRun.id == plan.run_id)).one()
    return sum(run)


@dataclass
class BatchResult:
    ids: list[int]
    outcomes: dict = field(default_factory=dict)     # account id -> (outcome, reason)

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0


def _not_done(run_id: int, after_id: int = 0):
    done = select(ChargeRunAccount.id).where(ChargeRunAccount.run_id == run_id,
                                             ChargeRunAccount.account_id == Account.id,
                                             ChargeRunAccount.outcome != "failed")
    if after_id:
        # Redundant with the accounts' own `id > after_id`, and for the same reason as `_among`:
        # whatever the plan, it reads only the marks past this point, not the whole run's.
        done = done.where(ChargeRunAccount.account_id > after_id)
    return ~done.exists()


def remaining(plan: RunPlan) -> int:
    if plan.condition is None:
        return 0
    return db.session.execute(select(func.count()).select_from(Account)
                              .where(plan.condition, _not_done(plan.run_id))).scalar_one()


# The columns of an account a batch reads: plain rows, not ORM objects (a run reads 100,000).
_ACCOUNT_ROW = (Account.id, Account.tenant_id, Account.account_number, Account.currency, Account.balance,
                Account.billing_type, Account.status, Account.credit_limit, Account.autorefill,
                Account.initial_balance, Account.timezone, Account.billing_schedule)


def _postgresql(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _among(session, column, ids):
    """`column IN ids`: on PostgreSQL one array parameter (`= ANY(:ids)`), whatever the batch size,
    instead of a parameter per id; and between the lowest and the highest. That range is
    redundant, but it keeps the plan right on tables a run is filling (its marks, its charges):
    their statistics do not know the run yet, and without the range the planner took a run's
    marks for a handful and read all of them for every batch (100,000 accounts: minutes)."""
    ids = list(ids)
    if _postgresql(session):
        return and_(column == any_(_array(ids, Integer)), column.between(min(ids), max(ids)))
    return column.in_(ids)


def _array(values, item_type):
    """A PostgreSQL array parameter, sent as its text literal: psycopg adapts a list element by
    element in Python (a millisecond per 2,000 ids, a dozen arrays a batch); joining the text is
    a third of that. Strings are quoted (and `"`, `\\` escaped) as array literals want."""
    if item_type is Integer:
        text_value = "{" + ",".join(str(int(v)) for v in values) + "}"
    else:
        text_value = "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
    return cast(bindparam(None, text_value, type_=String), postgresql.ARRAY(item_type))


def charge_batch(plan: RunPlan, *, after_id: int = 0, batch_size: int = BATCH_SIZE, skip_locked: bool = True,
                 exclude=(), now: datetime | None = None) -> BatchResult:
    """Lock the next accounts of the run not done yet, charge them, mark them. Flushes.

    The batch is charged at once (`charge_accounts`); if anything in it fails, its savepoint is
    rolled back and it is charged again account by account (a savepoint each), so one account's
    failure is recorded with its reason and the others go on."""
    if plan.condition is None:
        return BatchResult([])
    session = db.session
    q = (select(*_ACCOUNT_ROW).where(plan.condition, Account.id > after_id, _not_done(plan.run_id, after_id))
         .order_by(Account.id).limit(batch_size)
         .with_for_update(skip_locked=skip_locked, key_share=True, of=Account))
    if exclude:
        q = q.where(Account.id.not_in(sorted(exclude)))
    accounts = session.execute(q).all()
    result = BatchResult([a.id for a in accounts])
    if not accounts:
        return result
    # Now that they are locked, look again (a fresh statement): another worker may have
    # finished some of them while we waited for their lock.
    marks = dict(session.execute(select(ChargeRunAccount.account_id, ChargeRunAccount.outcome)
                                 .where(ChargeRunAccount.run_id == plan.run_id,
                                        _among(session, ChargeRunAccount.account_id, result.ids))).all())
    todo = [a for a in accounts if marks.get(a.id) in (None, "failed")]
    # Scheduled user-count decreases that start by this period apply first, in the same
    # transaction as the charges, so the users charge uses the new count (user_changes.py).
    changes = user_changes.due_for(todo, plan.periods)
    try:
        # The whole batch at once: a few statements and one ledger.post_many for all of it.
        with session.begin_nested():
            for row in todo:
                if row.id in changes:       # rare: the account as an object for extensions and orders
                    user_changes.apply_due(changes[row.id], _account_object(session, row.id))
            context = _batch_context([a.id for a in todo], plan)
            result.outcomes = charge_accounts(todo, plan, context)
    except Exception:
        # Something failed: account by account (a savepoint each), to record the one that fails.
        for change in changes.values():
            session.expire(change)
        context = _batch_context([a.id for a in todo], plan)
        result.outcomes = {}
        for row in todo:
            account = session.execute(select(Account).where(Account.id == row.id)
                                      .execution_options(populate_existing=True)).scalar_one()
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


def _account_object(session, account_id: int) -> Account:
    return session.execute(select(Account).where(Account.id == account_id)
                           .execution_options(populate_existing=True)).scalar_one()


def charge_accounts(accounts, plan: RunPlan, context: dict) -> dict:
    """`charge_account` for a whole batch of locked accounts (rows of `_ACCOUNT_ROW`), with the
    same rules and keys: what is owed and what is taken is decided in Python from the locked
    balances; the charge rows go in by one COPY (`_insert_charges`), the ledger entries (refills
    first) by one `ledger.post_many`, which moves each balance once. Only the few accounts to
    suspend or tell are loaded as objects, and suspended by one UPDATE. Returns {account id:
    (outcome, "")}."""
    session = db.session
    ids = [a.id for a in accounts]
    if not ids:
        return {}
    key = plan.key                       # every period of a run has the run's key
    existing, owed_before = set(), {}
    for account_id, kind, item, period, status, amount in session.execute(
            select(RecurringCharge.account_id, RecurringCharge.kind, RecurringCharge.item, RecurringCharge.period,
                   RecurringCharge.status, RecurringCharge.amount)
            .where(_among(session, RecurringCharge.account_id, ids),
                   or_(RecurringCharge.period == key, RecurringCharge.status == "owed"))):
        if period == key:
            existing.add((account_id, kind, item))
        if status == "owed":
            owed_before[account_id] = owed_before.get(account_id, 0) + amount
    dues = {}
    plans, changes = context["plans"], context["changes"]
    for a in accounts:
        period = plan.periods[a.billing_schedule]
        sp = plans.get(a.id)
        users = 0
        if sp is not None:
            users = sp.users
            if a.id in changes:
                users = users_at(sp.users, changes[a.id], utc_start(period.start, a.timezone))
        dues[a.id] = (period, due_charges(a, period, users=users, cost_per_user=sp.cost_per_user if sp else 0,
                                          numbers=context["numbers"].get(a.id, ()),
                                          extras=context["extras"].get(a.id, ())))
    refills = [a.id for a in accounts if a.autorefill and a.billing_type == "prepaid"]
    taken = _taken(session, [(a, f"account:{a}:refill:{key}") for a in refills]
                   + [(a, d.ledger_key) for a, (_, due) in dues.items() for d in due])
    now = utcnow()
    rows, entries, charges = [], [], {}
    for a in accounts:
        period, due = dues[a.id]
        prepaid = a.billing_type == "prepaid"
        balance = a.balance
        if prepaid and a.autorefill and _refill_due(due, lambda d: (a.id, d.kind, d.item) in existing):
            target = money.to_decimal(a.initial_balance or 0)
            refill_key = f"account:{a.id}:refill:{key}"
            if target > 0 and balance < target and (a.id, refill_key) not in taken:
                entries.append(ledger.Entry(a.id, target - balance, "refill", refill_key,
                                            f"Autorefill to {money.format_money(target, a.currency)}, {key}"))
                balance = target
        owing = prepaid and a.id in owed_before
        for d in due:
            if (a.id, d.kind, d.item) in existing:
                continue                                  # charged (or kept owed) before
            if (a.id, d.ledger_key) in taken:
                status = "covered"
            elif prepaid and (owing or balance < d.amount):
                status, owing = "owed", True
            else:
                status = "charged"
                balance -= d.amount
                charges[(a.id, d.kind, d.item)] = ledger.Entry(a.id, -d.amount, LEDGER_KIND[d.kind], d.ledger_key,
                                                               d.description)
            rows.append((a.tenant_id, a.id, d.kind, d.item, key, d.amount, d.description[:255], d.ledger_key,
                         status, plan.run_id, now, now if status == "charged" else None))
    inserted = _insert_charges(session, rows)
    # A row another transaction wrote meanwhile (an extra added at this moment) is theirs to charge;
    # so is an owed row: only the owed rows this batch inserted count as owed by this run.
    entries += [e for k, e in charges.items() if k in inserted]
    owed_now = {}
    for r in rows:
        if r[8] == "owed" and (r[1], r[2], r[3]) in inserted:
            owed_now[r[1]] = owed_now.get(r[1], Decimal(0)) + r[5]
    created = ledger.post_many(entries, new_keys=True)
    charged, moved = set(), {}
    for e in entries:
        if (e.account_id, e.idempotency_key[:160]) in created:
            moved[e.account_id] = moved.get(e.account_id, Decimal(0)) + e.amount
            if e.kind != "refill":
                charged.add(e.account_id)
    outcomes, to_tell = {}, {}
    for a in accounts:
        if a.id in owed_now:
            owed_total = owed_before.get(a.id, Decimal(0)) + owed_now[a.id]
            if a.status == "active":
                to_tell[a.id] = (REASON_UNPAID, "charges_unpaid", {"total": owed_total})
                outcomes[a.id] = ("suspended", "")
            else:
                to_tell[a.id] = (None, "charges_unpaid", {"total": owed_total})
                outcomes[a.id] = ("owed", "")
        elif (a.billing_type != "prepaid" and a.status == "active"
              and a.balance + moved.get(a.id, 0) + a.credit_limit < 0):
            to_tell[a.id] = (REASON_CREDIT_LIMIT, "credit_limit_exceeded", {})
            outcomes[a.id] = ("suspended", "")
        else:
            outcomes[a.id] = ("charged" if a.id in charged else "skipped", "")
    if to_tell:
        # The few accounts to suspend or tell, as objects (status changes are versioned and
        # audited), flushed together.
        from app.accounts.operations import suspend_accounts
        from app.notifications.outbox import billing_notices

        told = list(session.execute(select(Account).where(_among(session, Account.id, sorted(to_tell)))
                                    .order_by(Account.id).execution_options(populate_existing=True)).scalars())
        for reason in (REASON_UNPAID, REASON_CREDIT_LIMIT):
            suspend_accounts([a for a in told if to_tell[a.id][0] == reason], reason)
        billing_notices([(account, to_tell[account.id][1], to_tell[account.id][2]) for account in told])
    return outcomes


def _refill_due(due: list[Due], recorded) -> bool:
    """Autorefill comes before the period's charges: not for an account whose charges of the
    period are all recorded already (a run that goes over it again), which would top up the
    balance they left. An account with nothing due is refilled at each period start."""
    return not due or not all(recorded(d) for d in due)


def _taken(session, pairs: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """The (account id, ledger key) pairs already in the ledger: one index lookup per pair."""
    if not pairs:
        return set()
    if _postgresql(session):
        accounts, keys = zip(*pairs)
        wanted = select(func.unnest(_array(accounts, Integer)).label("a"),
                        func.unnest(_array(keys, String)).label("k")).subquery()
        q = (select(ledger.LedgerEntry.account_id, ledger.LedgerEntry.idempotency_key)
             .join(wanted, and_(ledger.LedgerEntry.account_id == wanted.c.a,
                                ledger.LedgerEntry.idempotency_key == wanted.c.k)))
    else:
        q = select(ledger.LedgerEntry.account_id, ledger.LedgerEntry.idempotency_key).where(
            ledger.LedgerEntry.account_id.in_(sorted({a for a, _ in pairs})),
            ledger.LedgerEntry.idempotency_key.in_(sorted({k for _, k in pairs})))
    return set(map(tuple, session.execute(q)))


_CHARGE_COLUMNS = ("tenant_id", "account_id", "kind", "item", "period", "amount", "description", "ledger_key",
                   "status", "run_id", "created_at", "applied_at")
_CHARGE_COPY = tuple(zip(_CHARGE_COLUMNS, ("int4", "int4", "varchar", "int4", "varchar", NUMERIC_BINARY,
                                           "varchar", "varchar", "varchar", "int4", "timestamp", "timestamp")))
_MARK_COPY = (("tenant_id", "int4"), ("account_id", "int4"), ("run_id", "int4"), ("outcome", "varchar"),
              ("reason", "varchar"), ("updated_at", "timestamp"))


def _copy(session, table: str, columns, rows) -> bool:
    """COPY the rows in a savepoint; False (nothing written) if a unique key refused one."""
    from psycopg.errors import UniqueViolation

    from app.bulk import copy_rows

    try:
        with session.begin_nested():
            copy_rows(session, table, columns, rows)
    except UniqueViolation:
        return False
    return True


def _insert_charges(session, rows: list[tuple]) -> set[tuple[int, str, int]]:
    """Insert the charge rows under their natural key; the (account, kind, item) of those
    inserted (a key already there is left alone)."""
    if not rows:
        return set()
    if _postgresql(session):
        # Binary COPY in a savepoint: the keys were looked up under the accounts' locks, so all
        # are new, but for a row another transaction wrote meanwhile (an extra added right
        # now). Then the unique constraint refuses the COPY and the INSERT below sorts it out.
        from app.bulk import numeric_binary

        if _copy(session, "recurring_charges", _CHARGE_COPY,
                 [r[:5] + (numeric_binary(r[5]),) + r[6:] for r in rows]):
            return {(r[1], r[2], r[3]) for r in rows}
        cols = list(zip(*rows))
        return set(map(tuple, session.execute(text(
            "INSERT INTO recurring_charges (tenant_id, account_id, kind, item, period, amount, description,"
            " ledger_key, status, run_id, created_at, applied_at)"
            " SELECT * FROM unnest(CAST(:t AS integer[]), CAST(:a AS integer[]), CAST(:k AS varchar[]),"
            " CAST(:i AS integer[]), CAST(:p AS varchar[]), CAST(:m AS numeric[]), CAST(:d AS varchar[]),"
            " CAST(:l AS varchar[]), CAST(:s AS varchar[]), CAST(:r AS integer[]), CAST(:c AS timestamp[]),"
            " CAST(:x AS timestamp[]))"
            " ON CONFLICT (account_id, kind, item, period) DO NOTHING RETURNING account_id, kind, item"),
            dict(zip("takipmdlsrcx", map(list, cols))))))
    return set(map(tuple, session.execute(
        _insert(session)(RecurringCharge).values([dict(zip(_CHARGE_COLUMNS, r)) for r in rows])
        .on_conflict_do_nothing(index_elements=["account_id", "kind", "item", "period"])
        .returning(RecurringCharge.account_id, RecurringCharge.kind, RecurringCharge.item))))


def _batch_context(account_ids: list[int], plan: RunPlan | None = None) -> dict:
    """Plans, numbers, extras and user-count changes of a batch, as plain rows: four queries,
    not 4 x N. With the run's `plan`, only the changes that can matter (made since its periods
    started) are read."""
    from app.billing.orders import Order
    from app.numbers.models import Number

    ctx = {"plans": {}, "numbers": {}, "extras": {}, "changes": {}}
    if not account_ids:
        return ctx
    session = db.session
    for p in session.execute(select(ServicePlan.account_id, ServicePlan.users, ServicePlan.cost_per_user)
                             .where(_among(session, ServicePlan.account_id, account_ids))):
        ctx["plans"][p.account_id] = p
    for n in session.execute(select(Number.account_id, Number.id, Number.number, Number.sell_monthly)
                             .where(_among(session, Number.account_id, account_ids), Number.status == "assigned")
                             .order_by(Number.id)):
        ctx["numbers"].setdefault(n.account_id, []).append(n)
    for x in session.execute(select(Extra.account_id, Extra.id, Extra.description, Extra.amount, Extra.period,
                                    Extra.start_date, Extra.end_date)
                             .where(_among(session, Extra.account_id, account_ids)).order_by(Extra.id)):
        ctx["extras"].setdefault(x.account_id, []).append(x)
    q = select(Order.account_id, Order.details, Order.processed_at, Order.created_at).where(
        _among(session, Order.account_id, account_ids), Order.kind == "users", Order.status == "processed")
    if plan is not None and plan.periods:
        # A day before the earliest period start: no zone is more than a day from UTC.
        since = datetime.combine(min(p.start for p in plan.periods.values()), dtime()) - timedelta(days=1)
        q = q.where(func.coalesce(Order.processed_at, Order.created_at) >= since)
    for o in session.execute(q):
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
    done = sorted(outcomes.items())
    if _postgresql(session) and not failed_before and _copy(
            session, "charge_run_accounts", _MARK_COPY,
            [(plan.tenant_id, a, plan.run_id, o, w, now) for a, (o, w) in done]):
        pass        # the usual case: first marks, by COPY (the accounts are locked and re-checked)
    elif _postgresql(session):
        session.execute(text(
            "INSERT INTO charge_run_accounts (tenant_id, account_id, run_id, outcome, reason, updated_at)"
            " SELECT :t, a, :r, o, w, :now FROM unnest(CAST(:a AS integer[]), CAST(:o AS varchar[]),"
            " CAST(:w AS varchar[])) AS v(a, o, w)"
            " ON CONFLICT (run_id, account_id) DO UPDATE SET outcome = excluded.outcome, reason = excluded.reason,"
            " updated_at = excluded.updated_at"),
            {"t": plan.tenant_id, "r": plan.run_id, "now": now, "a": [a for a, _ in done],
             "o": [o for _, (o, _) in done], "w": [w for _, (_, w) in done]})
    else:
        stmt = _insert(session)(ChargeRunAccount).values([
            {"tenant_id": plan.tenant_id, "account_id": account_id, "run_id": plan.run_id, "outcome": outcome,
             "reason": reason, "updated_at": now} for account_id, (outcome, reason) in done])
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
    """Mark the run finished when no account of it is left to do (failed ones stay to retry).

    The run's row is locked first: of several jobs of one run ending together, the last to get
    the lock counts after the others committed, so one of them sees the run done."""
    failed = db.session.execute(select(ChargeRun.failed).where(ChargeRun.id == plan.run_id)
                                .with_for_update()).scalar_one()
    left = remaining(plan)
    done = left <= failed
    # A job ending after the run was finished (a helper that found nothing left) keeps its time.
    db.session.execute(update(ChargeRun).where(ChargeRun.id == plan.run_id)
                       .values(heartbeat_at=utcnow(),
                               finished_at=func.coalesce(ChargeRun.finished_at, utcnow()) if done else None)
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
    plan = context["plans"].get(account.id)
    users = 0
    if plan is not None:
        users = users_at(plan.users, context["changes"].get(account.id, []), utc_start(period.start, account.timezone))
    due = due_charges(account, period, users=users, cost_per_user=plan.cost_per_user if plan else 0,
                      numbers=context["numbers"].get(account.id, []), extras=context["extras"].get(account.id, []))
    recorded = set(map(tuple, db.session.execute(select(RecurringCharge.kind, RecurringCharge.item).where(
        RecurringCharge.account_id == account.id, RecurringCharge.period == period.key))))
    if _refill_due(due, lambda d: (d.kind, d.item) in recorded):
        autorefill(account, period)
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
