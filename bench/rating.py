"""Rating figures, database side: a 60,000-prefix deck and 1,000,000 calls.

    .venv/bin/python bench/rating.py [--calls 1000000] [--prefixes 60000] [--persist 1000000]
                                     [--catch-up 1000000] [--batch 50000] [--workers 2] [--b-runs 2]
                                     [--sql-calls 5000] [--accounts 1000]

Prints figures and ratios; asserts nothing (the ledger check is printed). In its own schema
(`bench_rating`, dropped and recreated), on the PostgreSQL of --url:

(a) in memory: `PrefixIndex.rate_batch` over all the calls (the cost of each call at PLACES
    decimals: the bench reseller's call charge precision, 4, a new reseller's default).
(b) rated and persisted, the production path: the AMI watcher's CDR writer,
    `workers.ami.cdr_writer.write_cdrs`, fed the records as the watcher's call tracker hands
    them over (dicts: account code, aware datetimes), in batches of --batch (the writer takes
    what arrived while it wrote the last batch, up to 50,000), in --workers processes (default
    2, one per core): two watcher processes, each following its own Asterisk servers (an
    account's phones register to one of them, so the CDRs are split by account). Per batch:
    the accounts by account code, `store_rated_calls` (sell and buy price, bundles, call ids
    from the sequence in one query, binary COPY of the rated calls and of their ledger
    entries, one UPDATE moving each account's balance once), one commit. Timed from all
    processes ready (each has built its prefix indexes, as the watcher does at start) to the
    last commit; the tables already hold the calls stored for (b'). Run --b-runs times (each on
    new CDRs: switches of their own), every run printed; the figure is the best run, as for (a):
    on a shared virtual machine the host's other load only ever slows a run down.
    Then the ledger invariant is checked (balance == sum(ledger)) and a batch is sent again
    (it writes nothing). Statistics are fresh (ANALYZE after setup), as autovacuum keeps them, and
    the backlog stored for (b') is vacuumed and checkpointed before (b): a settled database.
(b') the catch-up job `workers.rating.rate_pending_calls` over calls stored unrated the day
    before (a backlog; stored by COPY before (b), not timed): per batch one locked select, the
    same rating, one UPDATE of the calls, `ledger.post_many`, one commit.
(c) naive baseline, same process, on a sample: one SQL query per call for the longest prefix
    (all the number's heads, `ORDER BY length(prefix) DESC LIMIT 1`), `cost.call_cost`; and the
    same plus what a naive rater writes per call (UPDATE the call, `ledger.post`), one commit
    per 1,000 calls.
"""
import argparse
import os
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, insert, select, text  # noqa: E402

from app.extensions import db  # noqa: E402
from app.rating.cost import Tariff, call_cost  # noqa: E402
from app.rating.deck import DeckRow  # noqa: E402
from app.rating.index import PrefixIndex, dialled_digits  # noqa: E402
from deck_import import SCHEMA, bench_app  # noqa: E402
from rating_engine import make_tariffs  # noqa: E402

CURRENCY = "USD"
PLACES = 4          # the bench reseller's call charge precision (create_tenant's default)


class SqlTimer:
    """--sql-times: seconds spent per kind of SQL statement (first words), printed and reset."""

    def __init__(self, engine, enabled):
        from sqlalchemy import event

        self.times = {}
        if enabled:
            event.listen(engine, "before_cursor_execute", self.before)
            event.listen(engine, "after_cursor_execute", self.after)
        self.enabled = enabled

    def before(self, conn, cursor, statement, params, context, executemany):
        conn.info["t0"] = time.perf_counter()

    def after(self, conn, cursor, statement, params, context, executemany):
        key = " ".join(statement.split()[:6])[:70]
        n, t = self.times.get(key, (0, 0.0))
        self.times[key] = (n + 1, t + time.perf_counter() - conn.info["t0"])

    def report(self):
        if self.enabled:
            for key, (n, t) in sorted(self.times.items(), key=lambda kv: -kv[1][1])[:12]:
                print(f"    sql {t:7.3f} s  {n:5d}x  {key}")
        self.times = {}


def per_second(n, seconds) -> str:
    return f"{n / seconds:>13,.0f} calls/s"


def make_world(tariffs, n_accounts, rng):
    """Accounts, each opening 30 of the deck's countries (10% of them with bundle minutes)."""
    by_country = {}
    for t in tariffs:
        by_country.setdefault(t.country, []).append(t)
    countries = sorted(c for c in by_country if c)
    plans = []
    for _ in range(n_accounts):
        opened = rng.sample(countries, min(30, len(countries)))
        plans.append({c: (rng.choice([30, 60, 120]) if rng.random() < 0.1 else 0) for c in opened})
    return by_country, plans


def make_calls(by_country, plans, n, rng, day: date):
    """(account index, number, duration, started_at): 97% to an opened country, 1% no route."""
    start = datetime.combine(day, datetime.min.time())
    out = []
    opened = [list(p) for p in plans]
    for i in range(n):
        a = rng.randrange(len(plans))
        r = rng.random()
        if r < 0.01:
            number = "999" + str(rng.randrange(10 ** 8, 10 ** 9))
        else:
            country = rng.choice(opened[a]) if r < 0.98 else rng.choice(list(by_country))
            p = rng.choice(by_country[country]).prefix
            number = p + "".join(rng.choice("0123456789") for _ in range(max(0, rng.randint(10, 13) - len(p))))
        duration = 0 if rng.random() < 0.3 else min(int(rng.expovariate(1 / 180)) + 1, 7200)
        out.append((a, number, duration, start + timedelta(seconds=rng.randrange(86_000))))
    # A switch hands its CDRs over as calls end, so they come roughly in time order.
    out.sort(key=lambda c: c[3])
    return out


def uniqueid(started: datetime, i: int) -> str:
    """Asterisk's form: the channel's creation time in epoch seconds, then a sequence number."""
    return f"{int(started.replace(tzinfo=timezone.utc).timestamp())}.{i}"


def write_batches(records, batch):
    """The production path as one watcher process runs it: write_cdrs per batch (it commits)."""
    from workers.ami.cdr_writer import write_cdrs

    return sum(write_cdrs(records[i:i + batch]) for i in range(0, len(records), batch))


def cpu_ticks() -> tuple[int, int]:
    """(stolen, all) CPU ticks of the machine so far (/proc/stat; zeros where there is none).
    On a virtual machine, "stolen" is time the host gave our vCPUs to someone else."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


def stolen_share(before, after) -> str:
    total = after[1] - before[1]
    return f"{100 * (after[0] - before[0]) / total:.0f}%" if total > 0 else "unknown"


def write_in_workers(app, shards, batch):
    """One process per shard of the CDRs, each writing its own: timed from the moment all are
    ready to the last commit."""
    import multiprocessing as mp

    db.session.remove()
    db.engine.dispose()
    ctx = mp.get_context("fork")
    ready, go = ctx.Barrier(len(shards) + 1), ctx.Event()
    results = ctx.Queue()

    def work(records):
        from workers.ami.db_policy import DatabasePolicy

        with app.app_context():
            db.engine.dispose(close=False)       # the parent's connections are not ours
            # As the watcher does at start (attach): the prefix indexes of the sheets in use.
            policy = DatabasePolicy(app)
            policy.warm_up(wait=True)
            policy.close()
            # The bench's own million CDR dicts are not the watcher's heap: keep the cyclic
            # collector from rescanning them between batches.
            import gc
            gc.freeze()
            ready.wait()
            go.wait()
            results.put(write_batches(records, batch))

    procs = [ctx.Process(target=work, args=(shard,)) for shard in shards]
    for p in procs:
        p.start()
    ready.wait()
    start = time.perf_counter()
    go.set()
    written = sum(results.get() for _ in procs)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return written, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--prefixes", type=int, default=60_000)
    ap.add_argument("--persist", type=int, default=None, help="calls rated into PostgreSQL by (b) (default: all)")
    ap.add_argument("--catch-up", type=int, default=None, help="calls rated by the catch-up job (b') (default: all)")
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--sql-calls", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="watcher processes writing CDRs in (b), one per core")
    ap.add_argument("--b-runs", type=int, default=2, help="runs of (b), each on new CDRs; the best is the figure")
    ap.add_argument("--keep", action="store_true", help="keep the bench schema afterwards")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of (b), run in this process")
    ap.add_argument("--sql-times", action="store_true", help="print the time spent per SQL statement kind in (b')")
    ap.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    persist = min(args.persist or args.calls, args.calls)
    catch_up = min(args.calls if args.catch_up is None else args.catch_up, args.calls)
    import logging
    logging.disable(logging.INFO)
    rng = random.Random(20261122)
    day = datetime.now(timezone.utc).date()

    tariffs = make_tariffs(args.prefixes, rng)
    buy_tariffs = [Tariff(t.prefix, t.country, t.description, (t.rate_per_minute * Decimal("0.6")).quantize(Decimal("0.000001")),
                          t.connect_fee, t.first_block, t.increment, Decimal(0)) for t in tariffs]
    by_country, plans = make_world(tariffs, args.accounts, rng)
    t0 = time.perf_counter()
    calls = make_calls(by_country, plans, args.calls, rng, day)
    print(f"generated {args.prefixes:,} prefixes, {args.calls:,} calls, {args.accounts:,} accounts "
          f"({time.perf_counter() - t0:.1f} s)")

    # -- (a) in memory ---------------------------------------------------------------------------
    index = PrefixIndex(tariffs)
    numbers = [c[1] for c in calls]
    durations = [c[2] for c in calls]
    best = None
    for _ in range(args.runs):
        start = time.perf_counter()
        batch = index.rate_batch(numbers, durations, CURRENCY, places=PLACES)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    speed_a = args.calls / best
    print(f"(a) in memory, PrefixIndex.rate_batch, {args.calls:,} calls: {per_second(args.calls, best)}"
          f"  ({best:.3f} s, best of {args.runs}; total {batch.total()} {CURRENCY}, {batch.unrouted:,} without route)")

    app = bench_app(args.url)
    with app.app_context():
        from app import ledger
        from app.accounts.models import Account
        from app.billing.models import PlanCountry, ServicePlan
        from app.calls.models import Call
        from app.cli.demo import ensure_platform
        from app.ledger import LedgerEntry
        from app.rating.imports import write_rows
        from app.rating.models import RateSheet
        from tenants.models import Tenant
        from app.resellers.operations import create_tenant
        from tenants.scope import tenant_scope, unscoped
        from workers.rating import rate_pending_calls

        t0 = time.perf_counter()
        with unscoped():
            root = ensure_platform()
            db.session.flush()
            buy_sheet = RateSheet(tenant_id=root.id, name="Wholesale", currency=CURRENCY)
            db.session.add(buy_sheet)
            db.session.flush()
            write_rows(buy_sheet, [DeckRow(0, t, None) for t in buy_tariffs])
            tenant = create_tenant(name="Bench reseller", slug="bench-reseller", parent_id=root.id, email="b@example.com",
                                   call_charge_places=PLACES)
            db.session.flush()
            db.session.execute(select(Tenant).where(Tenant.id == tenant.id)).scalar_one().buy_rate_sheet_id = buy_sheet.id
            db.session.commit()
        tid = tenant.id
        with tenant_scope(tid):
            sheet = RateSheet(tenant_id=tid, name="Retail", currency=CURRENCY)
            db.session.add(sheet)
            db.session.flush()
            write_rows(sheet, [DeckRow(0, t, None) for t in tariffs])
            sheet_id = sheet.id
            db.session.execute(insert(Account), [
                {"tenant_id": tid, "account_number": f"9{n:09d}", "name": f"Bench {n}", "email": f"b{n}@example.com",
                 "currency": CURRENCY} for n in range(args.accounts)])
            account_ids = list(db.session.execute(select(Account.id).order_by(Account.id)).scalars())
            db.session.execute(insert(ServicePlan), [
                {"tenant_id": tid, "account_id": a, "name": f"Plan {a}", "rate_sheet_id": sheet.id} for a in account_ids])
            plan_ids = dict(db.session.execute(select(ServicePlan.account_id, ServicePlan.id)).all())
            db.session.execute(insert(PlanCountry), [
                {"tenant_id": tid, "account_id": a, "plan_id": plan_ids[a], "country": c, "minutes": m}
                for a, plan in zip(account_ids, plans) for c, m in plan.items()])
            ledger.post_many([ledger.Entry(a, Decimal("1000000"), "credit", f"bench:credit:{a}", "Bench credit")
                              for a in account_ids])
            db.session.commit()
        # Fresh statistics, as autovacuum would have them on a live system (without them the
        # foreign-key checks plan a scan of the accounts table for every row).
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"setup: 2 sheets of {args.prefixes:,} rows, {args.accounts:,} accounts with plans "
              f"({time.perf_counter() - t0:.1f} s)")

        def store_calls(rows, tag):
            """Unrated Call rows by COPY, as the AMI watcher would have left them."""
            raw = db.session.connection().connection.driver_connection
            cols = ("tenant_id", "account_id", "server", "uniqueid", "linkedid", "extension", "destination",
                    "started_at", "answered_at", "ended_at", "billsec", "disposition", "country", "bundle_seconds",
                    "charged_seconds", "rating_error", "created_at")
            now = datetime.utcnow()
            with raw.cursor() as cur:
                with cur.copy(f"COPY calls ({', '.join(cols)}) FROM STDIN") as copy:
                    for i, (a, number, duration, started) in enumerate(rows):
                        answered = started if duration else None
                        copy.write_row((tid, account_ids[a], f"bench-{tag}", uniqueid(started, i), "", "1000", number, started,
                                        answered, started + timedelta(seconds=duration), duration,
                                        "ANSWERED" if duration else "NO ANSWER", "", 0, 0, "", now))
            db.session.commit()

        t0 = time.perf_counter()
        # Yesterday's calls, left unrated (a backlog): new calls come after them in time, as on a
        # live system, rather than interleaved with them in the time-ordered indexes.
        store_calls([(a, number, duration, started - timedelta(days=1))
                     for a, number, duration, started in calls[:catch_up]], "b")
        db.session.commit()
        # A settled database, as a live one is by the next day: yesterday's calls vacuumed and
        # analysed, the setup's dirty pages written out. Otherwise the first run of (b) shares the
        # cores with autovacuum of the million rows just stored and with the checkpoint they set off.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) calls"))
            conn.execute(text("CHECKPOINT"))
        print(f"stored {catch_up:,} unrated calls by COPY for (b') ({time.perf_counter() - t0:.1f} s, not timed)")

        # -- (b) the production path: the AMI watcher's CDR writer ------------------------------
        from app.rating.index import clear_index_cache
        from workers.ami.cdr_writer import write_cdrs

        with tenant_scope(tid):
            numbers = list(db.session.execute(select(Account.account_number).order_by(Account.id)).scalars())
            db.session.commit()
        workers = max(args.workers, 1)

        def cdr_shards(run: int) -> list[list[dict]]:
            """The CDRs as the watchers' call trackers hand them over, split by account; each run
            of (b) has switches of its own (new uniqueids), on the same accounts and plans."""
            shards = [[] for _ in range(workers)]
            suffix = f"-run{run + 1}" if run else ""
            for i, (a, number, duration, started) in enumerate(calls[:persist]):
                start = started.replace(tzinfo=timezone.utc)
                shards[a % workers].append({
                    "server": f"pbx{a % workers + 1}{suffix}", "uniqueid": uniqueid(started, i),
                    "linkedid": uniqueid(started, i), "accountcode": numbers[a], "channel": "PJSIP/1000-0000001",
                    "extension": "1000", "destination": number, "start": start,
                    "answer": start if duration else None, "end": start + timedelta(seconds=duration),
                    "billsec": duration, "disposition": "ANSWERED" if duration else "NO ANSWER"})
            return shards

        speeds = []
        for run in range(1 if args.profile else max(args.b_runs, 1)):
            shards = cdr_shards(run)
            clear_index_cache()
            if args.profile:
                import cProfile
                import pstats

                from workers.ami.db_policy import DatabasePolicy
                DatabasePolicy(app).warm_up(wait=True)
                profiler = cProfile.Profile()
                start = time.perf_counter()
                profiler.enable()
                written = sum(write_batches(shard, args.batch) for shard in shards)
                profiler.disable()
                t_b = time.perf_counter() - start
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            else:
                ticks = cpu_ticks()
                written, t_b = write_in_workers(app, shards, args.batch)
                stolen_b = stolen_share(ticks, cpu_ticks())
            speeds.append(written / t_b)
            with unscoped():
                mismatches = ledger.balance_mismatches()
                n_entries = db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                              .where(LedgerEntry.kind == "call"))
                db.session.commit()
            print(f"(b) rated + persisted, production path (the AMI watcher's CDR writer, write_cdrs, batches of "
                  f"{args.batch:,}, {workers} process{'es' if workers > 1 else ''}), run {run + 1}, {written:,} calls: "
                  f"{per_second(written, t_b)}  ({t_b:.2f} s; prefix indexes built before, as at the watcher's "
                  f"start)")
            if not args.profile:
                print(f"    CPU time taken by the host from this virtual machine during the run: {stolen_b}")
            print(f"    check: {len(mismatches)} accounts with balance != sum(ledger); {n_entries:,} call ledger "
                  f"entries in all")
        speed_b = max(speeds)
        if len(speeds) > 1:
            print(f"(b) best of {len(speeds)} runs: {per_second(1, 1 / speed_b).strip()} (each run: "
                  f"{', '.join(f'{v:,.0f}' for v in speeds)})")
        start = time.perf_counter()
        again = write_cdrs(shards[0][:args.batch])
        print(f"    sent again: {again} of {min(args.batch, len(shards[0])):,} CDRs written "
              f"({time.perf_counter() - start:.2f} s)")

        # -- (b') the catch-up job over calls stored unrated ----------------------------------------
        clear_index_cache()
        timer = SqlTimer(db.engine, args.sql_times)
        start = time.perf_counter()
        summary = rate_pending_calls(tid, batch_size=args.batch, time_limit=3600)
        t_b1 = time.perf_counter() - start
        timer.report()
        speed_b1 = summary["rated"] / t_b1 if t_b1 else 0
        print(f"(b') catch-up job (rate_pending_calls: UPDATE of stored calls, batches of {args.batch:,}), "
              f"{summary['rated']:,} calls: {per_second(summary['rated'], t_b1)}  ({t_b1:.2f} s)")
        print(f"    {summary['charged']:,} ledger debits, {summary['errors']:,} rating errors, "
              f"{summary['bundle_seconds']:,} bundle seconds, charged {summary['amounts']}")
        with unscoped():
            mismatches = ledger.balance_mismatches()
            unrated = db.session.scalar(select(func.count()).select_from(Call).where(Call.rated_at.is_(None)))
            db.session.commit()
        print(f"    check: {len(mismatches)} accounts with balance != sum(ledger); {unrated:,} calls left unrated")
        start = time.perf_counter()
        again = rate_pending_calls(tid, batch_size=args.batch)
        print(f"    re-run: {again['rated']} calls rated, {again['charged']} debits ({time.perf_counter() - start:.2f} s)")

        # -- (c) naive baselines ------------------------------------------------------------------
        m = min(args.sql_calls, args.calls)
        sample = calls[:m]
        lookup = text("SELECT id, prefix, country, description, rate_per_minute, connect_fee, first_block, increment,"
                      " minimum_charge FROM rates WHERE rate_sheet_id = :sheet AND prefix = ANY(:heads)"
                      " AND effective_from <= :day ORDER BY length(prefix) DESC, effective_from DESC LIMIT 1")
        conn = db.session.connection()

        def naive_cost(number, duration):
            digits = dialled_digits(number)
            row = conn.execute(lookup, {"sheet": sheet_id, "heads": [digits[:k] for k in range(1, 16)], "day": day}).first()
            if row is None:
                return None, None
            return row.id, call_cost(duration, Tariff(*row[1:]), CURRENCY, places=PLACES)

        start = time.perf_counter()
        for _, number, duration, _ in sample:
            naive_cost(number, duration)
        t_c1 = time.perf_counter() - start
        speed_c1 = m / t_c1
        print(f"(c1) naive: one SQL query per call for the prefix + call_cost, {m:,} calls: {per_second(m, t_c1)}")
        db.session.commit()

        # the naive rater also writes each call and its ledger entry, one statement at a time
        tag = uuid.uuid4().hex[:6]
        store_calls(sample, f"c{tag}")
        with tenant_scope(tid):
            pending = list(db.session.execute(select(Call.id, Call.account_id, Call.destination, Call.billsec)
                                              .where(Call.server == f"bench-c{tag}")
                                              .order_by(Call.id)))
            db.session.commit()
            conn = db.session.connection()
            start = time.perf_counter()
            for n, c in enumerate(pending, 1):
                rate_id, cost = naive_cost(c.destination, c.billsec)
                conn.execute(text("UPDATE calls SET rated_at = now(), rate_id = :r, cost = :c WHERE id = :i"),
                             {"r": rate_id, "c": cost or 0, "i": c.id})
                if cost:
                    ledger.post(c.account_id, -cost, "call", f"call:{c.id}", places=PLACES)
                if n % 1000 == 0:
                    db.session.commit()
                    conn = db.session.connection()
            db.session.commit()
            t_c2 = time.perf_counter() - start
        speed_c2 = len(pending) / t_c2
        print(f"(c2) naive, rated + persisted (query, UPDATE, ledger.post per call), {len(pending):,} calls: "
              f"{per_second(len(pending), t_c2)}")

        print(f"ratio (a) / (c1) naive lookup:        {speed_a / speed_c1:>10,.0f}x   (target >= 100x)")
        print(f"ratio (b) / (c2) naive persisted:     {speed_b / speed_c2:>10,.0f}x")
        print(f"ratio (b') / (c2) naive persisted:    {speed_b1 / speed_c2:>10,.0f}x")
        print(f"ratio (a) / (b):                      {speed_a / speed_b:>10,.1f}x")
        print(f"targets: (a) >= 1,000,000/s: {speed_a:,.0f}; (b) >= 50,000/s: {speed_b:,.0f} "
              f"(catch-up job (b'): {speed_b1:,.0f})")
        db.session.remove()
    if not args.keep:
        with app.app_context():
            with db.engine.begin() as c:
                c.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    print(f"machine load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
