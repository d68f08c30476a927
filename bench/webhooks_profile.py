"""Where one Stripe webhook's time goes: the app in this process, one event after another.

    .venv/bin/python bench/webhooks_profile.py [--events 1000] [--duplicates 0.3] [--top 25]

Builds the schema of bench/webhooks.py (`bench_webhooks_profile`), posts `--events` signed
`checkout.session.completed` events (30 % redeliveries) through the WSGI app (a test client:
no gunicorn, no network to the app) and prints, per event:
  - wall and CPU time of this process, and CPU time of the PostgreSQL backends it used
    (from /proc: the server's share of the work, which gunicorn workers would compete with);
  - SQL statements, transactions and Redis commands;
  - a cProfile run of the same events split by where the code lives (own time: flask/werkzeug,
    stripe, sqlalchemy, psycopg with its waits on the server, redis/rq, app code, the rest),
    and the app's own functions by cumulative time.
Sequential on purpose: it shows the cost of one event without queueing. Asserts nothing.
"""
import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RL_BENCH_WEBHOOKS_SCHEMA", "bench_webhooks_profile")

import bench.webhooks as wb  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

AREAS = (("flask/werkzeug", ("/flask/", "/werkzeug/", "/flask_login/", "/flask_wtf/", "/flask_sqlalchemy/",
                             "/jinja2/", "/itsdangerous/")),
         ("stripe", ("/stripe/",)),
         ("sqlalchemy", ("/sqlalchemy/",)),
         ("psycopg (incl. waiting for the server)", ("/psycopg/", "/psycopg_binary/")),
         ("redis/rq", ("/redis/", "/rq/")),
         ("app code", (str(ROOT / "app"), str(ROOT / "portals"), str(ROOT / "tenants"))))


def area_of(filename: str) -> str:
    for name, parts in AREAS:
        if any(p in filename for p in parts):
            return name
    return "other (stdlib: json, hmac, decimal, logging...)"


def backend_cpu(pids) -> float:
    """CPU seconds (user + system) the given PostgreSQL backends have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--duplicates", type=float, default=0.30)
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()

    app = wb.create_app(wb.BenchConfig)
    app.config["STRIPE_WEBHOOK_SECRET"] = wb.SECRET
    accounts = wb.build(app, args.accounts)
    client = app.test_client()

    counts = Counter()
    backends = set()
    with app.app_context():
        engine = wb.db.engine

    @event.listens_for(engine, "connect")
    def _backend(dbapi_connection, record):
        with dbapi_connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backends.add(cur.fetchone()[0])
        dbapi_connection.rollback()

    engine.dispose()                      # the pool starts again: every backend gets counted

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, parameters, context, executemany):
        counts["statements"] += 1

    @event.listens_for(engine, "commit")
    def _commit(conn):
        counts["commits"] += 1

    @event.listens_for(engine, "rollback")
    def _rollback(conn):
        counts["rollbacks"] += 1

    import redis
    real_execute = redis.Redis.execute_command
    real_pipeline = redis.client.Pipeline.execute

    def counted_execute(self, *a, **kw):
        counts["redis commands"] += 1
        counts["redis round trips"] += 1
        return real_execute(self, *a, **kw)

    def counted_pipeline(self, *a, **kw):
        counts["redis commands"] += len(self.command_stack)
        counts["redis round trips"] += 1
        return real_pipeline(self, *a, **kw)

    redis.Redis.execute_command = counted_execute
    redis.client.Pipeline.execute = counted_pipeline

    def post(body):
        r = client.post("/webhooks/stripe", data=body, headers=wb.sign(body))
        if r.status_code != 200:
            raise SystemExit(f"{r.status_code}: {r.get_data(as_text=True)[:200]}")
        return r.json["outcome"]

    def batch(tag):
        bodies, n_unique, _ = wb.make_events(accounts, args.events, args.duplicates, seed=hash(tag) % 1000)
        return [b.replace("_bench_", f"_{tag}_") for b in bodies], n_unique

    # Warm up: imports, the pool, psycopg's prepared statements.
    warm, _ = batch("warm")
    for body in warm[:100]:
        post(body)

    # 1. Measured without the profiler (twice: the better run is printed; the machine is shared).
    runs = []
    for attempt in range(2):
        bodies, n_unique = batch(f"plain{attempt}")
        counts.clear()
        outcomes = Counter()
        t0, wall0, pg0 = os.times(), time.perf_counter(), backend_cpu(backends)
        for body in bodies:
            outcomes[post(body)] += 1
        t1 = os.times()
        runs.append((time.perf_counter() - wall0, t1.user - t0.user, t1.system - t0.system,
                     backend_cpu(backends) - pg0, dict(counts)))
    wall, user, system, pg, counted = min(runs, key=lambda r: r[1] + r[2])
    cpu = user + system
    n = len(bodies)
    per = {k: v / n for k, v in counted.items()}

    # 2. The same kind of events under cProfile.
    bodies_p, _ = batch("profiled")
    prof = cProfile.Profile()
    wall_p0 = time.perf_counter()
    prof.enable()
    for body in bodies_p:
        post(body)
    prof.disable()
    wall_p = time.perf_counter() - wall_p0

    stats = pstats.Stats(prof)
    areas = Counter()
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
        areas[area_of(filename)] += tottime
    if os.environ.get("RL_PROFILE_DUMP"):
        stats.dump_stats(os.environ["RL_PROFILE_DUMP"])
    total = sum(areas.values())

    with app.app_context():
        with wb.db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {wb.SCHEMA} CASCADE"))
        wb.db.engine.dispose()
    redis.Redis.from_url(wb.REDIS_URL).flushdb()

    print(f"runs (wall, user, system, backends; s): " + "; ".join(" ".join(f"{x:.2f}" for x in r[:4]) for r in runs))
    print(f"webhook profile: {n} events in this process, one after another "
          f"({n_unique} unique, {n - n_unique} redeliveries): {dict(outcomes)}")
    print(f"  per event: wall {wall / n * 1000:.2f} ms, CPU of this process {cpu / n * 1000:.2f} ms "
          f"(user {user / n * 1000:.2f}, system {system / n * 1000:.2f}), "
          f"CPU of its PostgreSQL backends {pg / n * 1000:.2f} ms (/proc, 10 ms ticks)")
    print("  per event: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items())))
    print(f"  under cProfile: {wall_p / n * 1000:.2f} ms per event; own time by area, ms per event:")
    for name, secs in areas.most_common():
        print(f"    {secs / n * 1000:7.3f}  {secs / total:5.1%}  {name}")
    print(f"  the app's functions by cumulative time, ms per event (of {wall_p / n * 1000:.2f}):")
    rows = [(ct, nc, f"{Path(fn).relative_to(ROOT)}:{line}({name})")
            for (fn, line, name), (_, nc, _, ct, _) in stats.stats.items()
            if fn.startswith(str(ROOT)) and "/bench/" not in fn and "/.venv/" not in fn]
    for ct, nc, where in sorted(rows, reverse=True)[:args.top]:
        print(f"    {ct / n * 1000:7.3f}  calls/event {nc / n:5.2f}  {where}")


if __name__ == "__main__":
    main()
