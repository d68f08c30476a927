"""A monthly billing-cycle run at 100,000 accounts: 2 real RQ workers, PostgreSQL, Redis.

    .venv/bin/python bench/charge_run.py [--accounts 100000] [--workers 2] [--keep]
                                         [--in-process] [--profile] [--sql-times]

Builds its own PostgreSQL schema (`bench_charge_run`, dropped at the end unless --keep) with one
reseller and its accounts, bulk-loaded by COPY (app/bulk.py): a mix of prepaid and postpaid
accounts in five time zones, users x cost per user, assigned numbers, extras (monthly, weekly,
yearly, ended), user-count changes made after the period started, autorefill, prepaid balances
too low to pay (owed, suspended), postpaid accounts that cross their credit limit, a few
disabled, suspended by hand and closed accounts; every opening balance has its ledger entry.

Then starts `--workers` real `rq worker` processes as the Procfile does (its worker class), on the
Redis of BENCH_REDIS_URL (default db 5), and times the production path: the cron entry
`workers.billing.enqueue_period_runs` for the month starting next, until the run is finished
(every account of it marked; the run's job asks a helper job per other worker). Prints the
progress as the runs page reads it, then:

- accounts/s and ledger rows/s of the run (target: the whole run <= 30 s);
- a raw binary COPY of the same ledger rows (the run's new entries, read back) into a scratch
  table like ledger_entries (same columns and indexes), in the same run: COPY rows/s, and the
  run's ledger rows/s as a share of it (target >= 25 %);
- the CPU seconds of the run (the workers, their work horses and their PostgreSQL sessions,
  sampled from /proc: PostgreSQL runs on this machine) and of the COPY: on a shared machine they
  move less with the others' load than wall time does;
- the letters the run queued (unpaid, credit limit) and when the same workers had sent them;
- two re-runs of the same period, its finished jobs deleted from Redis first: as it is (the marks
  say every account is done), and with the run's marks deleted (every account goes through the
  batches again; only the natural keys stop a second charge). Each must add nothing;
- the checks: every account of the run charged exactly what it owes (the charges counted and
  summed independently of the app, from the generated data), none failed, no ledger key twice,
  no prepaid balance below zero, balance == sum(ledger) for every account (again after the re-runs).

--in-process runs the period in this process instead (one `charge_period` call, no RQ, no
helper); --profile does so under cProfile and prints where the time went; --sql-times adds the
time per SQL statement kind. Asserts nothing. The machine may be shared: the load average is
printed before and after.
"""
import argparse
import cProfile
import io
import os
import pstats
import random
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMA = "bench_charge_run"
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATABASE_URL = f"{PG}?options=-csearch_path%3D{SCHEMA}"
WORKER_DATABASE_URL = f"{DATABASE_URL}&application_name=bench-charge-worker"   # to find their sessions
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
QUEUE = "bench-charge-run"
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["RQ_QUEUE"] = QUEUE

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.sql import sqltypes  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402

ZONES = ["UTC"] * 6 + ["Europe/Paris", "America/New_York", "Asia/Tokyo", "Pacific/Honolulu"]
COSTS = [Decimal("0")] + [Decimal(c) for c in ("2.50", "4.00", "5.00", "5.00", "9.99")] * 4
NUMBER_PRICES = [Decimal(p) for p in ("1.00", "1.50", "3.00")]


class BenchConfig(Config):
    SQLALCHEMY_DATABASE_URI = DATABASE_URL
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "connect_args": {"application_name": "bench-charge-run"}}
    SECRET_KEY = "bench"
    REDIS_URL = REDIS_URL
    RQ_QUEUE = QUEUE


# --- building the data ---------------------------------------------------------------------------

def _pg_type(column) -> str:
    t = column.type
    for cls, name in ((sqltypes.BigInteger, "int8"), (sqltypes.Integer, "int4"), (sqltypes.Boolean, "bool"),
                      (sqltypes.Numeric, "numeric"), (sqltypes.DateTime, "timestamp"), (sqltypes.Date, "date"),
                      (sqltypes.Text, "text"), (sqltypes.String, "varchar"), (sqltypes.JSON, "json")):
        if isinstance(t, cls):
            return name
    raise TypeError(f"{column}: no COPY type for {t!r}")


def copy_dicts(session, table, rows: list[dict]) -> int:
    """Binary COPY of dicts into a model's table; the columns a dict leaves out take the model's
    default (as an ORM insert would), computed columns their expression."""
    from app.bulk import copy_rows

    if not rows:
        return 0
    given = set(rows[0])
    columns, defaults = [], []
    for c in table.columns:
        if c.computed is not None or (c.primary_key and c.name not in given):
            continue
        columns.append(c)
        if c.name in given:
            defaults.append(None)
            continue
        arg = c.default.arg if c.default is not None else None
        if callable(arg):
            arg = arg(None)
        defaults.append(arg)
    names = [c.name for c in columns]
    spec = [(c.name, _pg_type(c)) for c in columns]
    return copy_rows(session, table.name, spec,
                     (tuple(r[n] if n in r else d for n, d in zip(names, defaults)) for r in rows))


def period_of_bench(today: date):
    """The month that starts next (no account of the bench exists after its start), and a
    moment on its first day when it has started in every zone of the bench."""
    start = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return start, f"{start:%Y-%m}", f"{start.isoformat()}T16:00:00+00:00"


def build(app, n_accounts: int, rng: random.Random, start: date) -> dict:
    """The schema, one reseller, and its accounts with what each owes for the period at `start`.
    Returns the expected charges: {account id: [amount, ...]} (closed accounts: none)."""
    from app.accounts.models import Account
    from app.billing.extras import Extra, occurrences_between
    from app.billing.models import ServicePlan
    from app.billing.orders import Order
    from app.cli.demo import ensure_platform
    from app.ledger import LedgerEntry
    from app.numbers.models import Number
    from app.resellers.operations import create_tenant
    from tenants.scope import unscoped

    t0 = time.perf_counter()
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    created = datetime.combine(start - timedelta(days=45), datetime.min.time())
    change_at = datetime.combine(start, datetime.min.time()) + timedelta(hours=12)   # after every zone's start
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        db.create_all()
        with unscoped():
            root = ensure_platform()
            db.session.commit()
            tenant = create_tenant(name="Bench Cycle", slug="bench-cycle", parent_id=root.id,
                                   email="cycle@reseller.example")
            db.session.commit()
            tenant_id = tenant.id

            accounts, profile = [], []
            for i in range(n_accounts):
                r = rng.random()
                status = "active" if r < 0.96 else "disabled" if r < 0.98 else "suspended" if r < 0.99 else "closed"
                prepaid = rng.random() < 0.85
                row = dict(tenant_id=tenant_id, account_number=str(4_000_000_000 + i), name=f"Cycle {i}",
                           email=f"c{i}@customer.example", status=status,
                           status_reason="fraud check" if status == "suspended" else "",
                           billing_type="prepaid" if prepaid else "postpaid", timezone=rng.choice(ZONES),
                           currency="USD", created_at=created, updated_at=created, version=1)
                if prepaid:
                    p = rng.random()
                    if p < 0.04:                       # autorefill to 100.00
                        row.update(autorefill=True, initial_balance=Decimal("100.00"),
                                   balance=Decimal(rng.randint(0, 12000)) / 100)
                    elif p < 0.06:                     # too little to pay: owed, suspended
                        row.update(balance=Decimal(rng.randint(0, 400)) / 100)
                    else:
                        row.update(balance=Decimal(rng.randint(10000, 100000)) / 100)
                else:
                    row.update(balance=-Decimal(rng.randint(0, 10000)) / 100,
                               credit_limit=Decimal(rng.choice((100, 250, 500))))
                accounts.append(row)
            with db.session.begin_nested():
                copy_dicts(db.session, Account.__table__, accounts)
            ids = dict(db.session.execute(select(Account.account_number, Account.id)).all())
            for row in accounts:
                row["id"] = ids[row["account_number"]]

            ledger, plans, numbers, extras, orders = [], [], [], [], []
            expected = {}
            for row in accounts:
                a = row["id"]
                due = []
                if row["balance"]:
                    ledger.append(dict(tenant_id=tenant_id, account_id=a, amount=row["balance"], kind="credit",
                                       idempotency_key=f"bench:opening:{a}", description="Opening balance",
                                       balance_after=row["balance"], created_at=created))
                if rng.random() < 0.95:
                    users, cost = rng.choice((1, 1, 1, 2, 2, 3, 5, 10)), rng.choice(COSTS)
                    plans.append(dict(tenant_id=tenant_id, account_id=a, name=f"Plan {a}", users=users,
                                      cost_per_user=cost, created_at=created))
                    in_force = users
                    if rng.random() < 0.01:            # 2 more users than at the period start
                        orders.append(dict(tenant_id=tenant_id, account_id=a, kind="users", status="processed",
                                           description=f"Users {users} → {users + 2}",
                                           details={"before": str(users), "after": str(users + 2)},
                                           created_at=change_at, processed_at=change_at))
                        plans[-1]["users"] = users + 2
                    if cost > 0:
                        due.append(cost * in_force)
                for _ in range(rng.choice((0, 0, 0, 0, 1, 1, 1, 2))):
                    price = rng.choice(NUMBER_PRICES)
                    numbers.append(dict(tenant_id=tenant_id, account_id=a, number=f"+1555{len(numbers):08d}",
                                        country="US", status="assigned", sell_monthly=price, monthly_cost=price / 2,
                                        assigned_at=created, created_at=created))
                    due.append(price)
                x = rng.random()
                if x < 0.18:
                    kind = "monthly" if x < 0.10 else "weekly" if x < 0.15 else "yearly" if x < 0.17 else "ended"
                    first = created.date() + timedelta(days=rng.randint(0, 40))
                    first = first.replace(day=min(first.day, 28))
                    if kind == "yearly":                 # a year before a day of the period
                        first = date(start.year - 1, start.month, rng.randint(1, 28))
                    last = start - timedelta(days=3) if kind == "ended" else None
                    period = "monthly" if kind == "ended" else kind
                    amount = Decimal(rng.choice(("3.00", "7.50", "12.00")))
                    extras.append(dict(tenant_id=tenant_id, account_id=a, description=f"Extra {kind}", amount=amount,
                                       period=period, start_date=first, end_date=last, created_at=created))
                    times = _occurrences(first, last, period, start, end)
                    if times:
                        due.append(amount * times)
                if row["status"] != "closed":
                    expected[a] = due
            with db.session.begin_nested():
                copy_dicts(db.session, LedgerEntry.__table__, ledger)
                copy_dicts(db.session, ServicePlan.__table__, plans)
                copy_dicts(db.session, Number.__table__, numbers)
                copy_dicts(db.session, Extra.__table__, extras)
                from psycopg.types.json import Json
                for o in orders:
                    o["details"] = Json(o["details"])
                copy_dicts(db.session, Order.__table__, orders)
            db.session.commit()
        db.session.remove()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    print(f"built {n_accounts:,} accounts ({sum(1 for r in accounts if r['billing_type'] == 'prepaid'):,} prepaid), "
          f"{len(plans):,} plans, {len(numbers):,} numbers, {len(extras):,} extras, {len(orders):,} user-count "
          f"changes, {len(ledger):,} opening ledger entries in {time.perf_counter() - t0:.1f} s")
    return {"tenant_id": tenant_id, "expected": expected, "accounts": {r["id"]: r for r in accounts}}


def _occurrences(first: date, last: date | None, period: str, start: date, end: date) -> int:
    """Occurrences of an extra in [start, end), counted day by day (the app's own function is
    what is under test)."""
    step = {"weekly": 7, "monthly": None, "yearly": None}[period]
    days, d = 0, first
    while d < end and (last is None or d <= last):
        if d >= start:
            days += 1
        if step:
            d += timedelta(days=step)
        elif period == "monthly":
            d = date(d.year + (d.month == 12), d.month % 12 + 1, d.day) if d.day <= 28 else None
            if d is None:
                raise ValueError("the bench starts extras on days 1-28")
        else:
            d = date(d.year + 1, d.month, d.day)
    return days


# --- the workers ----------------------------------------------------------------------------------

def start_workers(n: int, log_dir: Path) -> list[tuple[subprocess.Popen, Path]]:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DATABASE_URL": WORKER_DATABASE_URL, "REDIS_URL": REDIS_URL, "RQ_QUEUE": QUEUE,
           "SECRET_KEY": "bench", "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = []
    for i in range(n):
        log = log_dir / f"worker-{i}.log"
        # As the Procfile starts them (the worker class builds the app once, before forking).
        proc = subprocess.Popen([str(bin_dir / "rq"), "worker", "--worker-class", "workers.runner.Worker",
                                 "--url", REDIS_URL, "--name", f"bench-charge-{i}", QUEUE],
                                cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        out.append((proc, log))
    return out


def wait_for_workers(redis, n: int, timeout: float = 60):
    from rq import Worker

    deadline = time.time() + timeout
    while time.time() < deadline:
        if len([w for w in Worker.all(connection=redis) if w.name.startswith("bench-charge-")]) >= n:
            return
        time.sleep(0.2)
    raise RuntimeError("the rq workers did not start")


def stop_workers(workers):
    for proc, _ in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc, _ in workers:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- CPU time -------------------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS     # parent pid, CPU seconds


class CpuMeter:
    """CPU seconds of the bench's job processes (the rq workers and every work horse they fork)
    and of their PostgreSQL sessions (found by application_name), sampled from /proc every
    0.2 s; a process that ends keeps its last sample. PostgreSQL runs on this machine.

    On a machine shared with other work, wall time depends on the others' load; the CPU time a
    run needs depends on it far less, so it is printed beside the wall time."""

    def __init__(self, roots: list[int], app_name: str, poll: bool = True):
        import threading

        import psycopg

        self.roots, self.app_name = set(roots), app_name
        self.client, self.server = {}, {}
        self.conn = psycopg.connect(f"host=127.0.0.1 port=5432 dbname={PG.rsplit('/', 1)[1]} user=postgres",
                                    autocommit=True)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True) if poll else None

    def sample(self):
        for root in self.roots:
            try:
                with open(f"/proc/{root}/task/{root}/children") as f:
                    pids = [root] + [int(p) for p in f.read().split()]
            except OSError:
                pids = [root]
            for pid in pids:
                st = _proc_stat(pid)
                if st:
                    self.client[pid] = st[1]
        for (pid,) in self.conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                        [self.app_name]):
            st = _proc_stat(pid)
            if st:
                self.server[pid] = st[1]

    def _loop(self):
        while not self.stop.wait(0.2):
            self.sample()

    def __enter__(self):
        self.sample()
        self.base = (sum(self.client.values()), sum(self.server.values()))
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.thread:
            self.stop.set()
            self.thread.join()
        self.sample()
        self.conn.close()

    @property
    def seconds(self) -> tuple[float, float]:
        return sum(self.client.values()) - self.base[0], sum(self.server.values()) - self.base[1]


# --- the run --------------------------------------------------------------------------------------

def counts(app) -> dict:
    from app.billing.cycle import RecurringCharge
    from app.ledger import LedgerEntry
    from app.notifications.models import Notification
    from tenants.scope import unscoped

    with app.app_context(), unscoped():
        out = {"ledger": db.session.scalar(select(func.count()).select_from(LedgerEntry)),
               "charges": db.session.scalar(select(func.count()).select_from(RecurringCharge)),
               "letters": db.session.scalar(select(func.count()).select_from(Notification))}
        db.session.remove()
    return out


def run_state(app, tenant_id: int, key: str):
    from app.billing import runs
    from app.billing.cycle import run_of
    from tenants.scope import tenant_scope

    with app.app_context(), tenant_scope(tenant_id, descendants=False):
        run = run_of(tenant_id, key)
        state = None if run is None else (run, runs.progress(run))
        db.session.remove()
    return state


def queue_idle(app) -> bool:
    from rq.registry import StartedJobRegistry

    from app import jobs

    with app.app_context():
        q = jobs.queue(app)
        return q.count == 0 and StartedJobRegistry(queue=q).count == 0


def timed_run(app, tenant_id: int, key: str, now: str, *, label: str, show_progress=True) -> float:
    """The cron tick, then wait until the run is finished (every account of it marked): seconds."""
    from workers.billing import enqueue_period_runs

    t0 = time.perf_counter()
    with app.app_context():
        queued = enqueue_period_runs(now=now)
    last_print = 0.0
    while True:
        time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        state = run_state(app, tenant_id, key)
        if state is not None and state[0].finished_at is not None:
            print(f"    {label}: jobs {queued}, run finished in {elapsed:.2f} s")
            return elapsed
        if show_progress and state is not None and elapsed - last_print >= 2:
            run, progress = state
            done = run.charged + run.skipped + run.owed + run.suspended + run.failed
            bar = f"{progress['done']:,}/{progress['total']:,}" if progress else "none"
            print(f"    {label} {elapsed:5.1f} s: {done:,} accounts marked; the runs page's progress: {bar}")
            last_print = elapsed
        if elapsed > 3600:
            raise RuntimeError("the run did not finish within an hour")


def wait_idle(app) -> float:
    t0 = time.perf_counter()
    while not queue_idle(app):
        time.sleep(0.1)
    return time.perf_counter() - t0


def rerun(app, redis, tenant_id: int, key: str, now: str, *, forget_marks: bool = False) -> float:
    """The same period again as a fresh job: the finished jobs' ids are deleted first (else a
    tick within their result_ttl queues nothing). With `forget_marks`, the run's marks are
    deleted too (as if they were lost): every account goes through the batches again, and only
    the natural keys of the charges and of the ledger stop a second charge."""
    from rq.job import Job

    from app import jobs

    with app.app_context():
        q = jobs.queue(app)
        for registry in (q.finished_job_registry, q.failed_job_registry):
            for job_id in registry.get_job_ids():
                if job_id.startswith("charge-run-"):
                    Job.fetch(job_id, connection=redis).delete()
        if forget_marks:
            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM charge_run_accounts"))
                conn.execute(text("UPDATE charge_runs SET charged = 0, skipped = 0, owed = 0, suspended = 0,"
                                  " failed = 0, finished_at = NULL"))
    elapsed = timed_run(app, tenant_id, key, now, label="re-run" + (" without marks" if forget_marks else ""),
                        show_progress=False)
    wait_idle(app)
    return elapsed


# --- the raw COPY baseline ------------------------------------------------------------------------

def copy_baseline(app, first_new_id: int):
    """The run's new ledger rows, read back, then COPY'd into a scratch table like ledger_entries
    (same columns, NOT NULLs and indexes), binary, one transaction: (rows, seconds of COPY+commit,
    its CPU meter)."""
    from app.bulk import NUMERIC_BINARY, copy_rows, numeric_binary

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS scratch_ledger"))
            conn.execute(text("CREATE TABLE scratch_ledger (LIKE ledger_entries INCLUDING INDEXES)"))
            rows = conn.execute(text(
                "SELECT id, tenant_id, account_id, amount, kind, idempotency_key, description, balance_after,"
                " created_by_id, created_at FROM ledger_entries WHERE id >= :first ORDER BY id"),
                {"first": first_new_id}).all()
        columns = (("id", "int4"), ("tenant_id", "int4"), ("account_id", "int4"), ("amount", NUMERIC_BINARY),
                   ("kind", "varchar"), ("idempotency_key", "varchar"), ("description", "varchar"),
                   ("balance_after", NUMERIC_BINARY), ("created_by_id", "int4"), ("created_at", "timestamp"))
        data = [(r[0], r[1], r[2], numeric_binary(r[3]), r[4], r[5], r[6], numeric_binary(r[7]), r[8], r[9])
                for r in rows]
        session = db.session
        session.execute(text("SELECT 1"))          # the session's connection, before the meter starts
        with CpuMeter([os.getpid()], "bench-charge-run", poll=False) as meter:
            t0 = time.perf_counter()
            copy_rows(session, "scratch_ledger", columns, data)
            session.commit()
            elapsed = time.perf_counter() - t0
        session.remove()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE scratch_ledger"))
    return len(data), elapsed, meter


# --- the checks -----------------------------------------------------------------------------------

def check(app, info, key: str) -> dict:
    from app.billing.cycle import ChargeRun, ChargeRunAccount, RecurringCharge
    from app.ledger import LedgerEntry, balance_mismatches
    from tenants.scope import unscoped

    expected = info["expected"]
    with app.app_context(), unscoped():
        got: dict[int, list[Decimal]] = {}
        for a, amount in db.session.execute(select(RecurringCharge.account_id, RecurringCharge.amount)
                                            .where(RecurringCharge.period == key)):
            got.setdefault(a, []).append(amount)
        run = db.session.execute(select(ChargeRun).where(ChargeRun.period == key)).scalar_one()
        marks = dict(db.session.execute(select(ChargeRunAccount.account_id, ChargeRunAccount.outcome)
                                        .where(ChargeRunAccount.run_id == run.id)).all())
        keys = db.session.execute(select(LedgerEntry.account_id, func.count()).where(
            LedgerEntry.idempotency_key.like(f"%:{key}")).group_by(LedgerEntry.account_id)).all()
        twice = db.session.scalar(select(func.count()).select_from(
            select(LedgerEntry.account_id, LedgerEntry.idempotency_key).group_by(
                LedgerEntry.account_id, LedgerEntry.idempotency_key).having(func.count() > 1).subquery()))
        negative_prepaid = db.session.scalar(text(
            "SELECT count(*) FROM accounts WHERE billing_type = 'prepaid' AND balance < 0"))
        mismatches = balance_mismatches()
        db.session.remove()
    wrong = [a for a, due in expected.items() if sorted(got.get(a, [])) != sorted(due)]
    unexpected = [a for a in got if a not in expected]
    outcomes = {}
    for o in marks.values():
        outcomes[o] = outcomes.get(o, 0) + 1
    return {
        "accounts in the run": f"{len(marks):,} of {len(expected):,} expected (closed ones left out)",
        "outcomes": ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())),
        "accounts not marked": len(set(expected) - set(marks)),
        "accounts charged other than their dues (count or amounts)": len(wrong) + len(unexpected),
        "charges expected / recorded":
            f"{sum(len(d) for d in expected.values()):,} / {sum(len(v) for v in got.values()):,}",
        "ledger keys of the period (entries)": f"{sum(n for _, n in keys):,}",
        "a ledger key used twice": twice,
        "prepaid balances below zero": negative_prepaid,
        "balance != sum(ledger)": len(mismatches),
    }


# --- profile --------------------------------------------------------------------------------------

class SqlTimer:
    """Seconds per kind of SQL statement (its first words)."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.times = {}
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn, cursor, statement, params, context, executemany):
        conn.info["t0"] = time.perf_counter()

    def after(self, conn, cursor, statement, params, context, executemany):
        key = " ".join(statement.split()[:7])[:80]
        n, t = self.times.get(key, (0, 0.0))
        self.times[key] = (n + 1, t + time.perf_counter() - conn.info["t0"])

    def report(self):
        total = sum(t for _, t in self.times.values())
        print(f"  SQL statements: {total:.2f} s in all (round trips included)")
        for key, (n, t) in sorted(self.times.items(), key=lambda kv: -kv[1][1])[:15]:
            print(f"    {t:7.3f} s {n:7d}x  {key}")


def run_in_process(app, tenant_id: int, key: str, now: str, *, profile: bool, sql_times: bool):
    """The period run as one `charge_period` call in this process (no RQ): (seconds, CPU meter)."""
    import gc

    from workers.billing import charge_period

    gc.collect()
    gc.freeze()          # the bench's own data is not a worker's heap (a worker freezes its app)
    timer = None
    with app.app_context():
        if sql_times:
            timer = SqlTimer(db.engine)
        prof = cProfile.Profile() if profile else None
        with CpuMeter([os.getpid()], "bench-charge-run", poll=False) as meter:
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            summary = charge_period(tenant_id, key, now=now)
            if prof:
                prof.disable()
            elapsed = time.perf_counter() - t0
    print(f"  in-process charge_period: {elapsed:.2f} s; {summary}")
    if prof:
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    if timer:
        timer.report()
    return elapsed, meter


# --- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--keep", action="store_true", help="keep the bench schema afterwards")
    ap.add_argument("--in-process", action="store_true", help="run the period in this process (no RQ)")
    ap.add_argument("--profile", action="store_true", help="run the period in this process under cProfile")
    ap.add_argument("--sql-times", action="store_true", help="in process: time per SQL statement kind")
    args = ap.parse_args()

    import logging
    import tempfile

    import redis as redis_lib

    logging.disable(logging.INFO)
    rng = random.Random(args.seed)
    start, key, now = period_of_bench(datetime.now(timezone.utc).date())
    app = create_app(BenchConfig)
    redis = redis_lib.Redis.from_url(REDIS_URL)
    redis.flushdb()
    info = build(app, args.accounts, rng, start)
    before = counts(app)
    with app.app_context():
        first_new_id = db.session.scalar(select(func.coalesce(func.max(text("id")), 0)).select_from(
            text("ledger_entries"))) + 1
        db.session.remove()
    load = os.getloadavg()
    print(f"period {key} (run at {now}); {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f} (the machine is shared: other work slows every figure down)")

    workers = []
    in_process = args.profile or args.in_process
    try:
        if in_process:
            elapsed, meter = run_in_process(app, info["tenant_id"], key, now, profile=args.profile,
                                            sql_times=args.sql_times)
            label = "in-process run" + (" (under cProfile)" if args.profile else "")
        else:
            log_dir = Path(tempfile.mkdtemp(prefix="bench-charge-run-"))
            workers = start_workers(args.workers, log_dir)
            wait_for_workers(redis, args.workers)
            with CpuMeter([proc.pid for proc, _ in workers], "bench-charge-worker") as meter:
                elapsed = timed_run(app, info["tenant_id"], key, now, label="run")
            letters = counts(app)["letters"]
            idle = elapsed + wait_idle(app)
            label = f"run with {args.workers} rq workers"
        after = counts(app)
        results = check(app, info, key)
        reruns = []
        if not in_process:
            for forget in (False, True):
                seconds = rerun(app, redis, info["tenant_id"], key, now, forget_marks=forget)
                reruns.append((forget, seconds, counts(app)))
        if workers:
            stop_workers(workers)
            for _, log in workers:
                tb = log.read_text().count("Traceback")
                if tb:
                    print(f"  {log}: {tb} traceback(s)")
            workers = []
    finally:
        stop_workers(workers)

    with app.app_context():
        from app.ledger import balance_mismatches
        from tenants.scope import unscoped

        with unscoped():
            results["balance != sum(ledger), after the re-runs"] = len(balance_mismatches())
        db.session.remove()
    copied, copy_s, copy_meter = copy_baseline(app, first_new_id)
    redis.flushdb()
    if not args.keep:
        with app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            db.engine.dispose()

    n_run = sum(1 for a in info["expected"])
    new_rows = after["ledger"] - before["ledger"]
    run_rate, copy_rate = new_rows / elapsed, copied / copy_s
    print(f"\n{label}: {n_run:,} accounts in {elapsed:.2f} s = {n_run / elapsed:,.0f} accounts/s (target: <= 30 s)")
    print(f"  ledger rows written: {new_rows:,} ({new_rows / elapsed:,.0f} rows/s); "
          f"charge rows: {after['charges'] - before['charges']:,}")
    print(f"  raw binary COPY of the same {copied:,} rows into a scratch ledger table, same run: {copy_s:.2f} s = "
          f"{copy_rate:,.0f} rows/s")
    print(f"  run ledger rows/s as a share of COPY's: {run_rate / copy_rate:.1%} (target >= 25%)")
    (rc, rs), (cc, cs) = meter.seconds, copy_meter.seconds
    print(f"  CPU seconds (less sensitive to the machine's other load): run {rc:.1f} in the job process(es) + "
          f"{rs:.1f} in PostgreSQL = {1000 * (rc + rs) / n_run:.2f} ms per account; COPY {cc:.2f} + {cs:.2f}")
    if rc + rs and cc + cs:
        print(f"  ledger rows per CPU second: run {new_rows / (rc + rs):,.0f}, COPY {copied / (cc + cs):,.0f}: "
              f"{(new_rows / (rc + rs)) / (copied / (cc + cs)):.1%}")
    if not in_process:
        print(f"  the {letters:,} letters the run queued (unpaid, credit limit) were sent by the same workers by "
              f"{idle:.1f} s")
    for forget, seconds, now_counts in reruns:
        how = ("with the run's marks deleted (every account through the batches again)" if forget
               else "(its marks say every account is done)")
        print(f"  re-run of the same period {how}: {seconds:.2f} s; added: ledger rows "
              f"{now_counts['ledger'] - after['ledger']}, charge rows {now_counts['charges'] - after['charges']}, "
              f"letters {now_counts['letters'] - after['letters']} (must be 0, 0, 0)")
    for k, v in results.items():
        print(f"  {k}: {v}")
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
