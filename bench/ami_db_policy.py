"""The AMI watcher's database-backed policy: admission, deadline and CDR latency on PostgreSQL.

    .venv/bin/python bench/ami_db_policy.py [--prefixes 60000] [--rounds 300] [--keep]

Builds its own PostgreSQL schema (`bench_ami_policy`, dropped at the end unless --keep) through
the app factory, a reseller with a 60,000-prefix rate sheet and prepaid accounts on plans
opening GB with free minutes, then times `DatabasePolicy` as the watcher calls it (each call
through its thread pool and an app context, from a running event loop):

- the first admission of an account (cold: the sheet's prefix index is built),
- admissions (account row, plan, countries, bundle usage, CPS and in-use counts in Redis),
- deadlines for 1, 10 and 30 answered calls sharing an account's credit (balance and bundle
  usage read every time; tariffs and plan cached),
- record_cdr (the CDR writer: stored once, rated, ledger debit, one commit; sent one at a
  time, so each is a batch of one).

Prints p50/p95/p99 in ms; asserts nothing. Redis DB 9 under a unique prefix, removed afterwards.
"""
import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = "bench_ami_policy"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
os.environ["DATABASE_URL"] = f"{PG}?options=-csearch_path%3D{SCHEMA}"
REDIS_URL = "redis://127.0.0.1:6379/9"

import redis.asyncio as aioredis  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402
from tenants.scope import unscoped  # noqa: E402
from workers.ami.counts import InUseCounts  # noqa: E402
from workers.ami.db_policy import DatabasePolicy  # noqa: E402
from workers.ami.policy import LiveCall  # noqa: E402


class BenchConfig(Config):
    SQLALCHEMY_DATABASE_URI = os.environ["DATABASE_URL"]
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10}
    REDIS_URL = None


def build(app, prefixes: int, accounts: int) -> list[str]:
    from app.accounts.operations import create_account
    from app.billing.plans import create_plan
    from app.cli.demo import ensure_platform
    from app.rating.models import Rate, RateSheet
    from app.resellers.operations import create_tenant

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        db.create_all()
        with unscoped():
            root = ensure_platform()
            tenant = create_tenant(name="Bench Voice", slug="bench", parent_id=root.id, email="b@bench.example")
            sheet = RateSheet(tenant_id=tenant.id, name="Big deck", currency="USD")
            db.session.add(sheet)
            db.session.flush()
            rng = random.Random(7)
            rows, seen = [], set()
            while len(rows) < prefixes:
                p = "44" + str(rng.randrange(10 ** 5, 10 ** 8)) if rows else "44"
                if p in seen:
                    continue
                seen.add(p)
                rows.append({"tenant_id": tenant.id, "rate_sheet_id": sheet.id, "prefix": p, "country": "GB",
                             "description": "GB", "rate_per_minute": Decimal("0.012"), "first_block": 30,
                             "increment": 6})
            db.session.execute(insert(Rate), rows)
            numbers = []
            for n in range(accounts):
                acct = create_account(tenant_id=tenant.id, name=f"Bench {n}", email=f"b{n}@bench.example",
                                      initial_credit=Decimal("25.00"))
                create_plan(acct, name=f"Plan {n}", users=1, cost_per_user=Decimal("0"), rate_sheet_id=sheet.id,
                            countries=[("GB", 100)])
                numbers.append(acct.account_number)
            db.session.commit()
        db.session.remove()
    return numbers


def figures(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    print(f"  {name:<44} n={len(ms):>4}  p50 {q[49]:6.2f} ms  p95 {q[94]:6.2f} ms  "
          f"p99 {q[98]:6.2f} ms  max {ms[-1]:6.2f} ms")


async def bench(app, numbers: list[str], rounds: int) -> None:
    client = aioredis.from_url(REDIS_URL)
    prefix = f"bench-ami-policy:{uuid.uuid4().hex[:8]}"
    policy = DatabasePolicy(app, counts=InUseCounts(client, prefix))
    try:
        t = time.perf_counter()
        await policy.admit(numbers[0], "442071234567", time.time())
        print(f"  first admission (builds the sheet's prefix index)    {1000 * (time.perf_counter() - t):8.1f} ms")

        samples = []
        for i in range(rounds):
            number = numbers[i % len(numbers)]
            t = time.perf_counter()
            verdict = await policy.admit(number, f"44{random.randrange(10 ** 9, 10 ** 10)}", time.time())
            samples.append(time.perf_counter() - t)
            assert verdict.allowed, verdict
        figures("admit", samples)

        for live in (1, 10, 30):
            samples = []
            for i in range(rounds):
                number = numbers[i % len(numbers)]
                now = time.time()
                calls = [LiveCall(f"pbx1/{i}.{k}", "pbx1", f"PJSIP/x-{k}", f"{i}.{k}", f"{i}.{k}", number, "x",
                                  f"44{2071230000 + k}", now - 30 - k, now - 20 - k) for k in range(live)]
                t = time.perf_counter()
                out = await policy.deadlines(number, calls, now)
                samples.append(time.perf_counter() - t)
                assert len(out) == live
            figures(f"deadlines, {live} answered call(s) sharing credit", samples)

        # the same, 20 accounts at once (a burst recomputing many accounts)
        samples = []
        for i in range(max(rounds // 20, 5)):
            now = time.time()
            t = time.perf_counter()
            await asyncio.gather(*(policy.deadlines(
                n, [LiveCall(f"pbx1/b{i}.{j}", "pbx1", "PJSIP/x-1", f"b{i}.{j}", f"b{i}.{j}", n, "x",
                             "442071234567", now - 5, now - 3)], now) for j, n in enumerate(numbers[:20])))
            samples.append(time.perf_counter() - t)
        figures("deadlines of 20 accounts at once (all done)", samples)

        try:
            import app.rating.cdr  # noqa: F401
            rated = "store_rated_calls + ledger, batch of one"
        except ImportError:
            rated = "insert only: app.rating.cdr not installed"
        samples = []
        for i in range(rounds):
            number = numbers[i % len(numbers)]
            end = datetime.now(timezone.utc)
            record = {"server": "pbx1", "uniqueid": f"{time.time():.6f}.{i}", "linkedid": "", "channel": "PJSIP/x-1",
                      "accountcode": number, "extension": "x", "destination": "442071234567", "start": end,
                      "answer": end, "end": end, "duration": 47, "billsec": 47, "disposition": "ANSWERED"}
            t = time.perf_counter()
            await policy.record_cdr(record)
            samples.append(time.perf_counter() - t)
        figures(f"record_cdr ({rated})", samples)
    finally:
        policy.close()
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=60_000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    import logging

    app = create_app(BenchConfig)
    logging.getLogger("ringledger").setLevel(logging.ERROR)
    t = time.perf_counter()
    numbers = build(app, args.prefixes, args.accounts)
    print(f"AMI database policy bench: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; {args.prefixes:,}-prefix sheet, {args.accounts} accounts "
          f"(built in {time.perf_counter() - t:.1f} s)")
    try:
        asyncio.run(bench(app, numbers, args.rounds))
    finally:
        if not args.keep:
            with app.app_context():
                with db.engine.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                db.engine.dispose()


if __name__ == "__main__":
    main()
