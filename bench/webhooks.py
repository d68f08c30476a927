"""Stripe webhooks under load: signed events, duplicates, concurrent senders, gunicorn, PostgreSQL.

    .venv/bin/python bench/webhooks.py [--events 2000] [--duplicates 0.3] [--senders 16]
                                       [--workers 3] [--threads 4] [--worker-class gthread|sync]
                                       [--accounts 200] [--no-floor] [--keep]

Builds its own PostgreSQL schema (`bench_webhooks`, RL_BENCH_WEBHOOKS_SCHEMA; dropped at the end
unless --keep) with one reseller and its accounts, starts the app under gunicorn on that schema
with Redis jobs on (BENCH_REDIS_URL; the receipts job is woken, as in production), then sends
`--events` signed `checkout.session.completed` events, of which `--duplicates` are redeliveries
of an event already in the mix (shuffled, so a duplicate may race its original), from
`--senders` threads on keep-alive connections.

Prints throughput, p50/p95/p99 latency, the checks (every unique event credited once,
duplicates never: double credits must be 0; balance == sum(ledger) on every account), and the
CPU each side used per event, from /proc: the senders (this process), the gunicorn processes
and the app's PostgreSQL backends (found by application_name). On a shared machine the
events/s move with the other load; the CPU per event moves much less.

The floor, same run: the same senders and gunicorn settings against a bare Flask endpoint
(bench/floor_wsgi.py: reads the body, answers the JSON; no signature, database or Redis).

The ceiling, same run, same machine: pgbench with as many clients as senders (-j = cores),
each transaction one single-row `UPDATE … SET balance = balance + 1` (what a credit does at
least) over as many rows as there are accounts, for as many seconds as the webhooks took,
under the same server settings (printed: neither side changes synchronous_commit), with the
CPU of pgbench and of its backends per transaction. Prints webhook events/s as a share of it
(target >= 50 %), whether p95 <= 50 ms, and CPU per event / CPU per pgbench transaction.
Asserts nothing.
"""
import argparse
import glob
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMA = os.environ.get("RL_BENCH_WEBHOOKS_SCHEMA", "bench_webhooks")   # apart from other runs
PG_HOST, PG_PORT, PG_DB, PG_USER = "127.0.0.1", 5432, "test", "postgres"
PG = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
APP_NAME = "rl_bench_webhooks"          # the app's PostgreSQL backends, found by name for their CPU
DATABASE_URL = f"{PG}?options=-csearch_path%3D{SCHEMA}&application_name={APP_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
SECRET = "whsec_bench_webhooks"
os.environ["DATABASE_URL"] = DATABASE_URL

import stripe  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402


class BenchConfig(Config):
    SQLALCHEMY_DATABASE_URI = DATABASE_URL
    SECRET_KEY = "bench"
    REDIS_URL = REDIS_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(app, n_accounts: int) -> list[tuple[int, str]]:
    from app.accounts.operations import create_account
    from app.cli.demo import ensure_platform
    from app.resellers.operations import create_tenant
    from tenants.scope import unscoped

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        db.create_all()
        with unscoped():
            root = ensure_platform()
            db.session.commit()
            tenant = create_tenant(name="Bench Voice", slug="bench-voice", parent_id=root.id,
                                   email="bench@reseller.example")
            db.session.commit()
            accounts = []
            for n in range(n_accounts):
                a = create_account(tenant_id=tenant.id, name=f"Bench {n}", email=f"b{n}@customer.example",
                                   initial_credit=Decimal("0"))
                accounts.append(a)
            db.session.commit()
            out = [(a.id, a.currency) for a in accounts]
        db.session.remove()
    return out


def make_events(accounts, n_events: int, dup_share: float, seed: int = 7):
    """[(event id, signed body, header)], unique count, expected credit per account."""
    rng = random.Random(seed)
    n_unique = round(n_events * (1 - dup_share))
    unique, expected = [], {}
    for i in range(n_unique):
        account_id, currency = rng.choice(accounts)
        cents = rng.randrange(500, 10001, 50)
        event = {"id": f"evt_bench_{i}", "object": "event", "type": "checkout.session.completed",
                 "data": {"object": {"id": f"cs_bench_{i}", "object": "checkout.session", "amount_total": cents,
                                     "currency": currency.lower(), "payment_status": "paid",
                                     "payment_intent": f"pi_bench_{i}",
                                     "metadata": {"account_id": str(account_id), "purpose": "topup"}}}}
        unique.append(json.dumps(event))
        expected[account_id] = expected.get(account_id, 0) + cents
    mix = unique + [rng.choice(unique) for _ in range(n_events - n_unique)]
    rng.shuffle(mix)
    return mix, n_unique, expected


def sign(body: str) -> dict:
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET),
            "Content-Type": "application/json"}


def wait_for(port: int, timeout: float = 30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def send_all(port: int, bodies: list[str], senders: int):
    """Send every body from `senders` threads (keep-alive); return latencies (s), statuses, wall time."""
    latencies, statuses, lock = [], {}, threading.Lock()
    items = list(enumerate(bodies))
    cursor = iter(items)
    start_line = threading.Barrier(senders + 1)

    def sender():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine_lat, mine_status = [], {}
        start_line.wait()
        while True:
            with lock:
                nxt = next(cursor, None)
            if nxt is None:
                break
            _, body = nxt
            headers = sign(body)             # signed when sent: the timestamp is fresh
            t0 = time.perf_counter()
            for attempt in range(2):
                try:
                    conn.request("POST", "/webhooks/stripe", body=body, headers=headers)
                    resp = conn.getresponse()
                    payload = resp.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    if attempt:
                        raise
            mine_lat.append(time.perf_counter() - t0)
            key = (resp.status, json.loads(payload).get("outcome") if resp.status == 200 else payload[:60])
            mine_status[key] = mine_status.get(key, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine_lat)
            for k, v in mine_status.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, statuses, time.perf_counter() - t0


def check(app, n_unique: int, expected: dict):
    from app.accounts.models import Account
    from app.ledger import LedgerEntry, balance_mismatches
    from app.payments.models import Payment, WebhookEvent
    from tenants.scope import unscoped

    with app.app_context(), unscoped():
        events = db.session.scalar(select(func.count()).select_from(WebhookEvent))
        credits = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment"))
        payments = db.session.scalar(select(func.count()).select_from(Payment).where(Payment.status == "succeeded"))
        balances = dict(db.session.execute(select(Account.id, Account.balance)).all())
        wrong = [a for a, cents in expected.items() if balances[a] != Decimal(cents) / 100]
        untouched = [a for a, b in balances.items() if a not in expected and b != 0]
        mismatches = balance_mismatches()
        db.session.remove()
    return {"events stored": events, "payment credits": credits, "payments succeeded": payments,
            "double credits": max(0, credits - n_unique), "missing credits": max(0, n_unique - credits),
            "accounts with a wrong balance": len(wrong) + len(untouched),
            "balance != sum(ledger)": len(mismatches)}


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    if not found:
        sys.exit("pgbench not found (it ships with the PostgreSQL server package)")
    return found


def pg_settings() -> dict:
    """The server settings both sides run under (neither the app nor pgbench changes them)."""
    import psycopg

    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user={PG_USER}", autocommit=True) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("synchronous_commit", "fsync", "wal_sync_method", "max_connections")}


def pgbench_ceiling(clients: int, seconds: int, rows: int) -> tuple[float, list[str], dict]:
    """Transactions/s of single-row balance updates, pgbench -c clients for `seconds`, over as
    many rows as the webhooks' accounts (the same contention per row); its arguments; CPU
    seconds per transaction of pgbench itself and of its PostgreSQL backends."""
    import psycopg

    schema = "bench_pgbench_" + SCHEMA
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user={PG_USER}", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.balances (id int PRIMARY KEY, balance numeric(18,4) NOT NULL DEFAULT 0)"
                     " WITH (fillfactor = 80)")
        conn.execute(f"INSERT INTO {schema}.balances (id) SELECT generate_series(1, {rows})")
        conn.execute(f"VACUUM ANALYZE {schema}.balances")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(f"\\set id random(1, {rows})\nUPDATE balances SET balance = balance + 1 WHERE id = :id;\n")
        script = f.name
    env = dict(os.environ, PGOPTIONS=f"-c search_path={schema}")
    command = [pgbench_binary(), "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-n",
               "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 2)), "-T", str(seconds), "-f", script, PG_DB]
    env["PGAPPNAME"] = "rl_bench_pgbench"
    pgbench_backends = Backends("rl_bench_pgbench")
    try:
        with tempfile.TemporaryFile("w+") as log, CPUWatch(pgbench_backends) as pg:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            log.seek(0)
            out = log.read()
        if proc.returncode:
            raise RuntimeError(f"pgbench failed:\n{out}")
        cpu = {"pgbench": usage.ru_utime + usage.ru_stime, "PostgreSQL": pg.seconds}
    finally:
        pgbench_backends.close()
        os.unlink(script)
        with psycopg.connect(f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user={PG_USER}", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    for line in out.splitlines():
        if line.startswith("number of transactions actually processed:"):
            transactions = int(line.split(":")[1].split("/")[0])
        if line.startswith("tps ="):
            return float(line.split("=")[1].split()[0]), command[5:-3], {k: v / transactions for k, v in cpu.items()}
    raise RuntimeError(f"no tps in pgbench output:\n{out}")


# --- CPU per event, from /proc: what each side costs, whatever else the machine runs ------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in glob.glob(f"/proc/{p}/task/*/children"):
            try:
                todo.extend(int(c) for c in Path(task).read_text().split())
            except OSError:
                pass
    return pids


class Backends:
    """The pids of the PostgreSQL backends of one application_name (a callable for CPUWatch)."""

    def __init__(self, application_name: str):
        import psycopg

        self.name = application_name
        self.conn = psycopg.connect(f"host={PG_HOST} port={PG_PORT} dbname={PG_DB} user={PG_USER}", autocommit=True)

    def __call__(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                                (self.name,))]

    def close(self):
        self.conn.close()


class CPUWatch:
    """CPU used by a changing set of processes: sampled every 0.2 s from a thread (processes
    that start meanwhile count from zero; the last 0.2 s of one that ends may be missed)."""

    def __init__(self, pids):
        self.pids = pids                      # callable -> pids to watch now
        self.first, self.last = {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, baseline=False):
        for pid in self.pids():
            cpu = cpu_of(pid)
            if cpu is not None:
                self.first.setdefault(pid, cpu if baseline else 0.0)
                self.last[pid] = cpu

    def _run(self):
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self):
        self._sample(baseline=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self.last[p] - self.first[p] for p in self.last)


def start_gunicorn(target: str, args, env, cwd) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
               "--log-level", "warning", target]
    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        wait_for(port)
    except Exception:
        stop(server)
        raise
    return server, port


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def timed_send(port, bodies, senders, server):
    """send_all, plus the CPU seconds used meanwhile by this process (the senders), the
    gunicorn processes and the app's PostgreSQL backends."""
    t0 = os.times()
    app_backends = Backends(APP_NAME)
    try:
        with CPUWatch(lambda: process_tree(server.pid)) as web, CPUWatch(app_backends) as pg:
            latencies, statuses, wall = send_all(port, bodies, senders)
    finally:
        app_backends.close()
    t1 = os.times()
    cpu = {"senders": (t1.user - t0.user) + (t1.system - t0.system), "gunicorn": web.seconds, "PostgreSQL": pg.seconds}
    return latencies, statuses, wall, cpu


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--duplicates", type=float, default=0.30)
    ap.add_argument("--senders", type=int, default=16)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--no-floor", action="store_true", help="skip the bare-Flask floor run")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    import redis

    app = create_app(BenchConfig)
    accounts = build(app, args.accounts)
    bodies, n_unique, expected = make_events(accounts, args.events, args.duplicates)
    env = dict(os.environ, DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, STRIPE_WEBHOOK_SECRET=SECRET,
               SECRET_KEY="bench", PYTHONPATH=str(ROOT))
    warm = [json.dumps({"id": f"evt_warm_{i}", "object": "event", "type": "customer.created",
                        "data": {"object": {"id": f"cus_{i}", "object": "customer"}}}) for i in range(64)]

    server, port = start_gunicorn("wsgi:app", args, env, ROOT)
    try:
        # Warm every worker (imports, first connections) with events that are not counted.
        send_all(port, warm, args.senders)
        latencies, statuses, wall, cpu = timed_send(port, bodies, args.senders, server)
    finally:
        stop(server)
    results = check(app, n_unique, expected)

    floor = None
    if not args.no_floor:
        # The same gunicorn settings and senders against a bare Flask endpoint (bench/floor_wsgi.py).
        server, port = start_gunicorn("floor_wsgi:app", args, dict(env, PYTHONPATH=str(ROOT / "bench")), ROOT / "bench")
        try:
            send_all(port, warm, args.senders)
            f_lat, _, f_wall, f_cpu = timed_send(port, [b.replace("evt_bench_", "evt_floor_") for b in bodies],
                                                 args.senders, server)
        finally:
            stop(server)
        floor = (len(f_lat) / f_wall, [x * 1000 for x in f_lat], {k: v / len(f_lat) for k, v in f_cpu.items()})

    settings = pg_settings()
    ceiling, pgbench_args, pgbench_cpu = pgbench_ceiling(args.senders, max(5, round(wall)), args.accounts)
    redis.Redis.from_url(REDIS_URL).flushdb()          # the receipts job the bench woke
    if not args.keep:
        with app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            db.engine.dispose()

    rate = len(latencies) / wall
    ms = [x * 1000 for x in latencies]
    per_event = {k: v / len(latencies) for k, v in cpu.items()}

    def costs(parts: dict) -> str:
        return ", ".join(f"{k} {v * 1000:.2f}" for k, v in parts.items()) + f"; total {sum(parts.values()) * 1000:.2f}"

    print(f"webhooks: {len(latencies)} signed events ({n_unique} unique, {len(latencies) - n_unique} duplicates), "
          f"{args.senders} senders, gunicorn {args.workers} workers x {args.threads} threads ({args.worker_class}), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  responses: " + ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(statuses.items(), key=str)))
    print(f"  throughput: {rate:.0f} events/s ({wall:.2f} s)")
    print(f"  latency ms: p50 {statistics.median(ms):.1f}  p95 {pct(ms, 95):.1f}  p99 {pct(ms, 99):.1f}  "
          f"max {max(ms):.1f}")
    print(f"  CPU ms per event: {costs(per_event)}")
    for k, v in results.items():
        print(f"  {k}: {v}")
    if floor:
        f_rate, f_ms, f_cpu = floor
        print(f"floor, a bare Flask endpoint (bench/floor_wsgi.py), same gunicorn and senders: {f_rate:.0f} requests/s, "
              f"p50 {statistics.median(f_ms):.1f} ms, p95 {pct(f_ms, 95):.1f} ms")
        print(f"  CPU ms per request: {costs(f_cpu)}")
    print(f"pgbench single-row UPDATE ({' '.join(pgbench_args)}, {args.accounts} rows), same machine, same run: "
          f"{ceiling:.0f} tps")
    print(f"  CPU ms per transaction: {costs(pgbench_cpu)}")
    print(f"  server settings for both: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    if floor:
        print(f"  floor / pgbench ceiling: {floor[0] / ceiling:.1%}   webhooks / floor: {rate / floor[0]:.1%}")
    print(f"  CPU per webhook event / CPU per pgbench transaction: "
          f"{sum(per_event.values()) / sum(pgbench_cpu.values()):.1f}x")
    print(f"  webhooks / pgbench ceiling: {rate / ceiling:.1%} (target >= 50%)   "
          f"p95 {pct(ms, 95):.1f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
