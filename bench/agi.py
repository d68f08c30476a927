"""FastAGI call control: outbound decisions per second and latency, over TCP, on PostgreSQL + Redis.

    .venv/bin/python bench/agi.py [--prefixes 60000] [--accounts 1000] [--carriers 5] [--calls 4000]
                                  [--loop uvloop|asyncio] [--processes 1 2] [--keep | --reuse]

Builds its own schema (`bench_agi`, or RL_BENCH_SCHEMA; dropped at the end unless --keep, reused
by --reuse): a reseller with a 60,000-prefix sell sheet, 1,000 prepaid accounts with one
extension each, 5 carriers each with its own 60,000-prefix buy sheet, and one least-cost route
group sending `44` to all five. Then runs the real FastAGI server (workers.agi) in this process
and the switch's side in a separate process (spawned: `--concurrency` AGI clients over TCP, each
call a full session: headers, every command answered). Prints, against a naive baseline in the
same run (the same decision made with plain SQL per call: longest prefix by `LIKE` on the
account's sheet and each carrier's sheet, no caches, no Redis):
- decisions/s and p50/p90/p99 with 16 clients, and one call at a time (the latency alone);
- the CPU per decision of this server process, of its PostgreSQL backends, of Redis (the whole
  server: shared with anything else on the machine) and of the clients, and what one core and
  the machine's cores could decide at those costs;
- the same calls through `CallControl.decide` in this process without the AGI protocol: the
  fast path (workers/agi/cache.py) 16 and 1 at a time, and the reference path (`cached=False`,
  every row read per call: the code before the caches) on `--reference-calls`;
- with --processes, the same load against `flask agi serve` itself with that many worker
  processes (AGI_PROCESSES).
Asserts nothing. On a shared machine, compare figures of one run (ratios), and read the load.
"""
import argparse
import asyncio
import os
import random
import re
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


# ---- Asterisk's side: AGI clients in a process of their own ---------------------------------------
_OUTCOME = re.compile(rb'RL_CAUSE=([^,"\\]*)|RL_DECISION=(\w+)')


class _AgiCall(asyncio.Protocol):
    """One FastAGI session as the switch plays it: headers, then `200 result=…` to each command."""

    def __init__(self, header: bytes, done: asyncio.Future):
        self.header, self.done, self.buffer, self.outcome = header, done, b"", ""

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.header)

    def data_received(self, data):
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"EXEC MSet "):       # RL_CAUSE comes before RL_DECISION
                for cause, decision in _OUTCOME.findall(line):
                    self.outcome = self.outcome or (cause or decision).decode()
            self.transport.write(b"200 result=1\n" if line.startswith(b"HANGUP") else b"200 result=0\n")

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.outcome)


async def agi_call(port, endpoint, destination):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    header = (f"agi_network_script: outbound\nagi_arg_1: {endpoint}\nagi_arg_2: {destination}\n"
              f"agi_callerid: unknown\n\n").encode()
    await loop.create_connection(lambda: _AgiCall(header, done), "127.0.0.1", port)
    return await done


async def _load(port, work, concurrency):
    queue, samples, causes = list(reversed(work)), [], {}

    async def client():
        while queue:
            ep, dest = queue.pop()
            t = time.perf_counter()
            got = await agi_call(port, ep, dest)
            samples.append(time.perf_counter() - t)
            causes[got] = causes.get(got, 0) + 1
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return samples, causes, time.perf_counter() - t0


def _load_process(port, work, concurrency, pipe):
    try:                          # the switch's stand-in: as lean as it gets, whatever the server runs on
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    c0 = time.process_time()
    samples, causes, wall = asyncio.run(_load(port, work, concurrency))
    pipe.send((samples, causes, wall, time.process_time() - c0))
    pipe.close()


def run_load(port, work, concurrency):
    """The calls from a separate process (spawned: nothing of the server's state), as the switch
    is; returns (latencies, outcomes, wall, client CPU seconds)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_load_process, args=(port, work, concurrency, theirs))
    proc.start()
    theirs.close()
    result = ours.recv()
    proc.join()
    return result


# ---- CPU accounting --------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def our_pg_backends(port: int = 5432) -> list[int]:
    """PostgreSQL backend pids of this process's open connections (whatever driver made them):
    our sockets to `port` (/proc), matched to pg_stat_activity.client_port."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[2].rsplit(":", 1)[1], 16) == port and f[9] in inodes:
                ports.append(int(f[1].rsplit(":", 1)[1], 16))
    if not ports:
        return []
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s) "
                                           "AND pid <> pg_backend_pid()", (ports,))]


class CpuMeter:
    """CPU seconds of this process (the server), of its PostgreSQL backends (the connections it
    has open now) and of the Redis server (shared with whatever else uses it on the machine)."""

    def __init__(self, redis_client):
        self.pg_pids = our_pg_backends()
        self.redis = redis_client

    async def read(self):
        info = await self.redis.info("cpu")
        return (time.process_time(), sum(_proc_cpu(p) for p in self.pg_pids),
                float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))


def figures(name, samples, wall):
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"  {name:<44} {len(ms) / wall:7.0f} decisions/s  p50 {q[49]:6.2f}  p90 {q[89]:6.2f}  "
          f"p99 {q[98]:6.2f}  max {ms[-1]:6.2f} ms")
    return len(ms) / wall, q[98]


async def protocol_alone(work, concurrency):
    """The AGI protocol without a decision: a route answering every call as an allowed one with
    five carriers (the commands a real decision sends here), same server code, same clients.
    Returns (server CPU per session, client CPU per session, commands per session)."""
    from workers.agi.decide import Decision
    from workers.agi.routes import answer
    from workers.agi.server import SafeApplication, start

    class Leg:
        def __init__(self, n):
            self.dial, self.carrier_id = f"PJSIP/4412345678@carrier-{n}", n
    canned = Decision(True, "", "100001", "4412345678", 1234, legs=tuple(Leg(n) for n in range(5)))
    sent = []

    async def route(request):
        send = request.send_command

        async def counted(command):
            sent.append(command)
            return await send(command)
        request.send_command = counted
        await answer(request, canned)
    app = SafeApplication()
    app.add_route("outbound", route)
    server = await start(app, "127.0.0.1", 0)
    c0 = time.process_time()
    samples, _, _, client_cpu = await asyncio.to_thread(run_load, server.sockets[0].getsockname()[1], work,
                                                        concurrency)
    cpu = time.process_time() - c0
    server.close()
    return cpu / len(samples), client_cpu / len(samples), len(sent) / len(samples)


async def run_agi(app, endpoints, args):
    from workers.agi.decide import CallControl
    from workers.agi.run import build as build_server

    prefix = f"bench-agi:{uuid.uuid4().hex[:8]}:inuse"
    server, control, client, _ = await build_server(app, counts_prefix=prefix, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    control.warm_up(wait=True)   # indexes, and (fast path) account profiles and routing in bulk
    rng = random.Random(1)
    work = [(endpoints[rng.randrange(len(endpoints))], f"44{rng.randrange(10 ** 9, 10 ** 10)}")
            for _ in range(args.calls)]
    single = work[:args.single_calls]
    await asyncio.gather(*(agi_call(port, ep, dest) for ep, dest in work[:200]))   # warm up, and open connections
    out = {}
    meter = CpuMeter(client)
    before = await meter.read()
    samples, causes, wall, client_cpu = await asyncio.to_thread(run_load, port, work, args.concurrency)
    after = await meter.read()
    n = len(samples)
    out["tcp"] = (samples, wall, causes, [(b - a) / n for a, b in zip(before, after)] + [client_cpu / n])
    samples1, _, wall1, _ = await asyncio.to_thread(run_load, port, single, 1)
    out["tcp1"] = (samples1, wall1)
    out["protocol"] = await protocol_alone(work, args.concurrency)
    # The same decisions without the AGI protocol (CallControl.decide in this process): the
    # fast path with 16 and 1 at a time, then the reference path (cached=False: every row read
    # per call, the code before the caches) on the first `reference_calls` calls.
    for name, ctl, todo, conc in (("fast", control, list(work), args.concurrency),
                                  ("fast1", control, list(single), 1),
                                  ("reference", CallControl(app, control.counts, cached=False),
                                   list(work[:args.reference_calls]), args.concurrency)):
        times = []

        async def decider():
            while todo:
                ep, dest = todo.pop()
                t = time.perf_counter()
                await ctl.decide(ep, dest, time.time(), presented="unknown")
                times.append(time.perf_counter() - t)
        c0, t1 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(decider() for _ in range(conc)))
        out[name] = (times, time.perf_counter() - t1, (time.process_time() - c0) / len(times))
        if ctl is not control:
            ctl.close()
    out["misses"], out["reloads"] = dict(getattr(control.fast, "misses", {})), dict(control.fast.reloads)
    server.close()
    control.close()
    keys = [k async for k in client.scan_iter(match=f"{prefix.rsplit(':', 1)[0]}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    return out


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def run_served(args, endpoints, processes):
    """The same load against `flask agi serve` itself with AGI_PROCESSES=`processes`, in its own
    process tree; returns (latencies, outcomes, wall, server CPU seconds, client CPU seconds)."""
    import signal
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, DATABASE_URL=BenchConfig.SQLALCHEMY_DATABASE_URI, REDIS_URL=REDIS_URL, AGI_HOST="127.0.0.1",
               AGI_PORT=str(port), AGI_PROCESSES=str(processes), AGI_UVLOOP="1" if args.loop == "uvloop" else "0",
               PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "agi", "serve"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rng = random.Random(1)
        work = [(endpoints[rng.randrange(len(endpoints))], f"44{rng.randrange(10 ** 9, 10 ** 10)}")
                for _ in range(args.calls)]

        async def warm():
            deadline = time.monotonic() + 60
            while True:
                try:
                    await agi_call(port, *work[0])
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            await asyncio.sleep(5)            # every worker's bulk warm-up (profiles, indexes)
            for i in range(0, 400, 16):
                await asyncio.gather(*(agi_call(port, ep, d) for ep, d in work[i:i + 16]))
        asyncio.run(warm())
        pids = [proc.pid] + _children(proc.pid)
        before = sum(_proc_cpu(p) for p in pids)
        samples, causes, wall, client_cpu = run_load(port, work, args.concurrency)
        return samples, causes, wall, sum(_proc_cpu(p) for p in pids) - before, client_cpu
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=60_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--carriers", type=int, default=5)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--naive-calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reference-calls", type=int, default=300)
    parser.add_argument("--processes", type=int, nargs="*", default=[],
                        help="also run the load against `flask agi serve` with these AGI_PROCESSES counts")
    parser.add_argument("--single-calls", type=int, default=1000, help="calls made one at a time (latency)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the server's (and clients') event loop; `flask agi serve` uses uvloop")
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
        runner = asyncio.run
        if args.loop == "uvloop":
            import uvloop
            runner = uvloop.run
        out = runner(run_agi(app, endpoints, args))
        samples, wall, causes, cpu = out["tcp"]
        print(f"  server event loop: {args.loop}; clients in a separate process; outcomes {causes}")
        rate, p99 = figures(f"FastAGI over TCP ({args.concurrency} clients)", samples, wall)
        server_cpu, pg_cpu, redis_cpu, client_cpu = (x * 1000 for x in cpu)
        print(f"    CPU per decision: server process {server_cpu:.3f} ms, its PostgreSQL backends {pg_cpu:.3f} ms, "
              f"Redis {redis_cpu:.3f} ms (whole server, shared), AGI clients {client_cpu:.3f} ms; "
              f"total {server_cpu + pg_cpu + redis_cpu + client_cpu:.3f} ms")
        print(f"    one process at 100 % of a core would decide at most {1000 / server_cpu:.0f}/s; the machine's "
              f"{os.cpu_count()} cores, with PostgreSQL, Redis and the clients on them, at most "
              f"{os.cpu_count() * 1000 / (server_cpu + pg_cpu + redis_cpu + client_cpu):.0f}/s")
        figures("FastAGI over TCP (1 client, one call at a time)", *out["tcp1"])
        proto_server, proto_client, commands = out["protocol"]
        print(f"    the AGI protocol alone (a canned answer, {commands:.0f} commands per call, each one round trip): "
              f"server {proto_server * 1000:.3f} ms, clients {proto_client * 1000:.3f} ms of CPU per call")
        fast_rate, fast_p99 = figures(f"decide() cached, no protocol ({args.concurrency})", *out["fast"][:2])
        figures("decide() cached, no protocol (1)", *out["fast1"][:2])
        print(f"    CPU per decide(): {out['fast'][2] * 1000:.3f} ms ({args.concurrency} at a time), "
              f"{out['fast1'][2] * 1000:.3f} ms (one at a time); cache misses {out['misses'] or 'none'}, "
              f"reloads {out['reloads']}")
        ref_rate, ref_p99 = figures(f"decide() reference path ({args.concurrency})", *out["reference"][:2])
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
        for n in args.processes:
            samples, causes, wall, server_cpu, client_cpu = run_served(args, endpoints, n)
            figures(f"flask agi serve, {n} process{'es' if n > 1 else ''} ({args.concurrency} clients)", samples, wall)
            print(f"    outcomes {causes}; CPU per decision: server processes {server_cpu / len(samples) * 1000:.3f} ms, "
                  f"AGI clients {client_cpu / len(samples) * 1000:.3f} ms")
        print(f"  ratio: {rate / base_rate:.1f}x the decisions/s, p99 {base_p99 / p99:.1f}x lower; "
              f"targets: >= 2,000 decisions/s ({'met' if rate >= 2000 else 'NOT met'}), "
              f"p99 <= 20 ms ({'met' if p99 <= 20 else 'NOT met'}); load after {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            with app.app_context():
                with db.engine.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                db.engine.dispose()


if __name__ == "__main__":
    main()
