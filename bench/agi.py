"""FastAGI call control: outbound decisions per second and latency, over TCP, on PostgreSQL + Redis.

    .venv/bin/python bench/agi.py [--prefixes 60000] [--accounts 1000] [--carriers 5] [--calls 4000]

Builds its own schema (`bench_agi`, dropped at the end unless --keep): a reseller with a
60,000-prefix sell sheet, 1,000 prepaid accounts with one extension each, 5 carriers each with
its own 60,000-prefix buy sheet, and one least-cost route group sending `44` to all five. Then
runs the real FastAGI server (workers.agi) in this process and `--concurrency` AGI clients over
TCP, each call a full session (headers, every SET VARIABLE answered). Prints decisions/s and
p50/p99, against a naive baseline in the same run: the same decision made with plain SQL per call
(longest prefix by `LIKE` on the account's sheet and each carrier's sheet, no caches, no Redis).
Then the same calls through `CallControl.decide` in this process without the AGI protocol: the
cached fast path (workers/agi/cache.py), and the reference path (`cached=False`, every row read
per call: the code before the caches) on `--reference-calls`, with their ratio.
Asserts nothing.
"""
import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = os.environ.get("RL_BENCH_SCHEMA", "bench_agi")   # apart from other runs on the machine
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
os.environ["DATABASE_URL"] = f"{PG}?options=-csearch_path%3D{SCHEMA}"
REDIS_URL = os.environ.get("RL_BENCH_REDIS", "redis://127.0.0.1:6379/9")

from sqlalchemy import insert, text  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402
from tenants.scope import unscoped  # noqa: E402


class BenchConfig(Config):
    SQLALCHEMY_DATABASE_URI = os.environ["DATABASE_URL"]
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 16, "max_overflow": 8}
    REDIS_URL = REDIS_URL


def _deck(tenant_id, sheet_id, prefixes, rate, seed):
    rng, rows, seen = random.Random(seed), [], set()
    while len(rows) < prefixes:
        p = "44" + str(rng.randrange(10 ** 5, 10 ** 8)) if rows else "44"
        if p in seen:
            continue
        seen.add(p)
        rows.append({"tenant_id": tenant_id, "rate_sheet_id": sheet_id, "prefix": p, "country": "GB",
                     "description": "GB", "rate_per_minute": rate, "first_block": 30, "increment": 6})
    db.session.execute(insert(__import__("app.rating.models", fromlist=["Rate"]).Rate), rows)


def build(app, prefixes, accounts, carriers):
    from app.accounts.operations import create_account
    from app.billing.plans import create_plan
    from app.cli.demo import ensure_platform
    from app.rating.models import RateSheet
    from app.resellers.operations import create_tenant
    from app.routing.models import Carrier, Route, RouteCarrier, RouteGroup
    from provisioning.extensions import add_extensions

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))   # migration 0004
        db.create_all()
        with unscoped():
            root = ensure_platform()
            tenant = create_tenant(name="Bench Voice", slug="bench", parent_id=root.id, email="b@bench.example")
            sheet = RateSheet(tenant_id=tenant.id, name="Sell deck", currency="USD")
            db.session.add(sheet)
            db.session.flush()
            _deck(tenant.id, sheet.id, prefixes, Decimal("0.012"), 7)
            group = RouteGroup(tenant_id=root.id, name="Default", strategy="lcr", is_default=True)
            db.session.add(group)
            db.session.flush()
            route = Route(tenant_id=root.id, group_id=group.id, prefix="44")
            db.session.add(route)
            db.session.flush()
            for c in range(carriers):
                buy = RateSheet(tenant_id=root.id, name=f"Buy {c}", currency="USD")
                db.session.add(buy)
                db.session.flush()
                _deck(root.id, buy.id, prefixes, Decimal("0.004") + Decimal(c) / 1000, 100 + c)
                carrier = Carrier(tenant_id=root.id, name=f"Carrier {c}", host=f"c{c}.example", buy_rate_sheet_id=buy.id)
                db.session.add(carrier)
                db.session.flush()
                db.session.add(RouteCarrier(tenant_id=root.id, route_id=route.id, carrier_id=carrier.id, position=c))
            endpoints = []
            for n in range(accounts):
                acct = create_account(tenant_id=tenant.id, name=f"Bench {n}", email=f"b{n}@bench.example",
                                      initial_credit=Decimal("25.00"))
                create_plan(acct, name=f"Plan {n}", users=1, cost_per_user=Decimal("0"), rate_sheet_id=sheet.id,
                            countries=[("GB", 0)])
                endpoints.append(add_extensions(acct, 1)[0].sip_username)
            db.session.commit()
        db.session.remove()
    return endpoints


def existing_endpoints(app):
    """The endpoints of a schema kept by an earlier run (--keep), or None."""
    with app.app_context():
        found = db.session.execute(text("SELECT count(*) FROM information_schema.tables "
                                        "WHERE table_schema = :s AND table_name = 'extensions'"), {"s": SCHEMA}).scalar()
        if not found:
            return None
        endpoints = [r[0] for r in db.session.execute(text("SELECT sip_username FROM extensions ORDER BY id"))]
        db.session.remove()
    return endpoints or None


def naive_decide(endpoint, destination):
    """Plain SQL per call: account by endpoint, longest sell prefix, every carrier's buy prefix."""
    q = db.session.execute
    acct = q(text("SELECT a.id, a.balance, a.status, p.rate_sheet_id FROM accounts a "
                  "JOIN extensions e ON e.account_id = a.id JOIN service_plans p ON p.account_id = a.id "
                  "WHERE e.sip_username = :u"), {"u": endpoint}).first()
    sell = q(text("SELECT rate_per_minute FROM rates WHERE rate_sheet_id = :s AND :d LIKE prefix || '%' "
                  "ORDER BY length(prefix) DESC LIMIT 1"), {"s": acct.rate_sheet_id, "d": destination}).first()
    legs = q(text("SELECT c.id, (SELECT rate_per_minute FROM rates r WHERE r.rate_sheet_id = c.buy_rate_sheet_id "
                  "AND :d LIKE r.prefix || '%' ORDER BY length(r.prefix) DESC LIMIT 1) AS buy "
                  "FROM carriers c JOIN route_carriers rc ON rc.carrier_id = c.id ORDER BY buy"),
             {"d": destination}).all()
    return acct.status == "active" and sell is not None and acct.balance > 0, legs


async def agi_call(port, endpoint, destination):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"agi_network_script: outbound\nagi_arg_1: {endpoint}\nagi_arg_2: {destination}\n"
                  f"agi_callerid: unknown\n\n").encode())
    decision = ""
    while True:
        line = await reader.readline()
        if not line:
            break
        if b"RL_DECISION" in line and not decision:
            decision = line.decode().split()[-1].strip('"')
        if b"RL_CAUSE" in line:
            decision = line.decode().split()[-1].strip('"')
        writer.write(b"200 result=1\n" if line.startswith(b"HANGUP") else b"200 result=0\n")
    writer.close()
    return decision


def figures(name, samples, wall):
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"  {name:<40} {len(ms) / wall:8.0f} decisions/s  p50 {q[49]:6.2f} ms  p99 {q[98]:6.2f} ms")
    return len(ms) / wall, q[98]


async def run_agi(app, endpoints, calls, concurrency, reference=300):
    from workers.agi.run import build as build_server

    prefix = f"bench-agi:{uuid.uuid4().hex[:8]}:inuse"
    server, control, client, _ = await build_server(app, counts_prefix=prefix, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    control.warm_up(wait=True)   # indexes, and (fast path) account profiles and routing in bulk
    rng = random.Random(1)
    work = [(endpoints[rng.randrange(len(endpoints))], f"44{rng.randrange(10 ** 9, 10 ** 10)}") for _ in range(calls)]
    for ep, dest in work[:200]:                    # warm the per-account terms
        await agi_call(port, ep, dest)
    samples, allowed, causes = [], 0, {}
    queue = list(work)

    async def worker():
        nonlocal allowed
        while queue:
            ep, dest = queue.pop()
            t = time.perf_counter()
            got = await agi_call(port, ep, dest)
            allowed += got == "ALLOW"
            causes[got] = causes.get(got, 0) + 1
            samples.append(time.perf_counter() - t)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    # The same decisions without the AGI protocol (CallControl.decide in this process): the
    # fast path, then the reference path (cached=False: every row read per call, the code
    # before the caches) on the first `reference` calls.
    from workers.agi.decide import CallControl

    direct = {}
    for name, ctl, todo in (("fast", control, list(work)),
                            ("reference", CallControl(app, control.counts, cached=False), list(work[:reference]))):
        times = []

        async def decider():
            while todo:
                ep, dest = todo.pop()
                t = time.perf_counter()
                await ctl.decide(ep, dest, time.time(), presented="unknown")
                times.append(time.perf_counter() - t)
        t1 = time.perf_counter()
        await asyncio.gather(*(decider() for _ in range(concurrency)))
        direct[name] = (times, time.perf_counter() - t1)
        if ctl is not control:
            ctl.close()
    server.close()
    control.close()
    keys = [k async for k in client.scan_iter(match=f"{prefix.rsplit(':', 1)[0]}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    print(f"    outcomes: {causes}")
    return samples, wall, allowed, direct


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=60_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--carriers", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--naive-calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reference-calls", type=int, default=300)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="use the schema an earlier --keep run left (implies --keep)")
    args = parser.parse_args()
    import logging

    app = create_app(BenchConfig)
    logging.getLogger("ringledger").setLevel(logging.ERROR)
    t = time.perf_counter()
    endpoints = existing_endpoints(app) if args.reuse else None
    if endpoints is not None:
        args.keep = True
        args.accounts = len(endpoints)
    else:
        endpoints = build(app, args.prefixes, args.accounts, args.carriers)
    print(f"FastAGI bench: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"{args.prefixes:,} prefixes, {args.accounts} accounts, {args.carriers} carriers per route "
          f"(built in {time.perf_counter() - t:.1f} s)")
    try:
        samples, wall, allowed, direct = asyncio.run(run_agi(app, endpoints, args.calls, args.concurrency,
                                                             args.reference_calls))
        rate, p99 = figures(f"FastAGI over TCP ({args.concurrency} clients)", samples, wall)
        print(f"    {allowed}/{len(samples)} allowed")
        fast_rate, fast_p99 = figures(f"decide() cached, no protocol ({args.concurrency})", *direct["fast"])
        ref_rate, ref_p99 = figures(f"decide() reference path ({args.concurrency})", *direct["reference"])
        print(f"  cached vs reference path: {fast_rate / ref_rate:.1f}x the decisions/s, "
              f"p99 {ref_p99 / fast_p99:.1f}x lower")
        with app.app_context():
            rng, naive = random.Random(2), []
            t0 = time.perf_counter()
            for _ in range(args.naive_calls):
                t = time.perf_counter()
                naive_decide(endpoints[rng.randrange(len(endpoints))], f"44{rng.randrange(10 ** 9, 10 ** 10)}")
                naive.append(time.perf_counter() - t)
            base_rate, base_p99 = figures("naive SQL per call (no server, 1 client)", naive, time.perf_counter() - t0)
            db.session.remove()
        print(f"  ratio: {rate / base_rate:.1f}x the decisions/s, p99 {base_p99 / p99:.1f}x lower")
    finally:
        if not args.keep:
            with app.app_context():
                with db.engine.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                db.engine.dispose()


if __name__ == "__main__":
    main()
