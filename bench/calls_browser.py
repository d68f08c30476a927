"""Calls browser at 1,000,000 calls: keyset pages, filters, ASR/ACD, CSV export.

    .venv/bin/python bench/calls_browser.py [--calls 1000000] [--rounds 15] [--keep]

Builds its own PostgreSQL schema (`bench_calls`, dropped at the end unless --keep) through the
app factory, resellers of very different sizes (one with a sub-reseller, plus a tail of tiny
ones, so the platform admin's scope merges 20 tenants), 2,000 accounts, then the calls by COPY
over 90 days: 60 % answered, the rest busy / no answer / failed / congestion; 1 % rated with
an error, 2 % not rated yet. VACUUM ANALYZE, then times, in one process, what
app/calls/browser.py does for a request (the functions the route calls, inside the login's
tenant scope; plus the whole HTTP request once per case):

  first page, a deep keyset page (200,000 calls into the big reseller's 90 days, a fifth of --calls if fewer), filtered
  first pages (destination prefix, country, disposition, rating error, one account, one
  reseller for the admin), the ASR/ACD aggregate over the filter, and the CSV export's
  throughput (rows/s, batch by batch as the streamed response does).

Baseline in the same process: the same pages by OFFSET (one query, ORDER BY started_at DESC,
id DESC, OFFSET n LIMIT size, scoped like every query), timed alternately with the keyset
pages, each measurement the best of --best-of runs in a row. Prints p50/p95 in ms and the
ratio OFFSET / keyset. Asserts nothing.

    --keep keeps the schema; --reuse times a kept schema again without building it.
"""
import argparse
import contextvars
import os
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = "bench_calls"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
os.environ.setdefault("DATABASE_URL", f"{PG}?options=-csearch_path%3D{SCHEMA}")

from sqlalchemy import insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.models import Account  # noqa: E402
from app.calls import browser  # noqa: E402
from app.calls.models import Call  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402
from tenants.scope import EVERYTHING, Scope, subtree_ids, unscoped, use_scope  # noqa: E402

START = date(2026, 9, 1)
DAYS = 90
# (slug, name, share of the calls, parent slug)
RESELLERS = (
    ("big", "Big Voice", 0.50, None),
    ("big-north", "Big Voice North", 0.10, "big"),
    ("mid", "Mid Telecom", 0.25, None),
    ("small", "Small Calls", 0.01, None),
    ("tail", "Tail Networks", 0.125, None),
) + tuple((f"tiny-{i}", f"Tiny {i}", 0.001, None) for i in range(15))
DESTINATIONS = (("44", "GB", 0.30), ("447", "GB", 0.15), ("33", "FR", 0.15), ("49", "DE", 0.12),
                ("1", "US", 0.18), ("34", "ES", 0.06), ("39", "IT", 0.04))
DISPOSITIONS = (("ANSWERED", 0.60), ("NO ANSWER", 0.20), ("BUSY", 0.10), ("FAILED", 0.05), ("CONGESTION", 0.05))


class BenchConfig(Config):
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    WTF_CSRF_ENABLED = False
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


def pick(rng, table):
    r, acc = rng.random(), 0.0
    for *value, share in table:
        acc += share
        if r < acc:
            return value
    return table[-1][:-1]


def build(app, n_calls: int, rng: random.Random) -> dict:
    from app.cli.demo import ensure_platform
    from app.logins.operations import create_login
    from app.resellers.operations import create_tenant

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        db.create_all()
        with unscoped():
            root = ensure_platform()
            tenants, logins = {}, {}
            for slug, name, _, parent in RESELLERS:
                t = create_tenant(name=name, slug=slug, email=f"ops@{slug}.example",
                                  parent_id=tenants[parent].id if parent else root.id)
                tenants[slug] = t
                logins[slug] = create_login(tenant_id=t.id, email=f"owner@{slug}.example", name=f"{name} owner",
                                            role="reseller_owner", password="bench-password").id
            logins["admin"] = create_login(tenant_id=root.id, email="admin@platform.example", name="Admin",
                                           role="platform_admin", password="bench-password").id
            db.session.commit()
            tenant_ids = {slug: t.id for slug, t in tenants.items()}
            db.session.remove()
            del logins

        t0 = time.perf_counter()
        numbers = rng.sample(range(10**9, 10**10), 2000)
        rows = []
        for i in range(2000):
            slug = pick(rng, [(s, share) for s, _, share, _ in RESELLERS])[0]
            rows.append(dict(tenant_id=tenant_ids[slug], account_number=str(numbers[i]), name=f"Account {i}",
                             company="", email=f"a{i}@bench.example", first_name="A", status="active",
                             billing_type="prepaid", balance=Decimal(100), credit_limit=Decimal(0), currency="USD",
                             version=1))
        for slug in tenant_ids:      # every reseller has an account, however small
            rows.append(dict(rows[0], tenant_id=tenant_ids[slug], account_number=str(10**10 + len(rows)),
                             email=f"x{len(rows)}@bench.example"))
        with db.engine.begin() as conn:
            conn.execute(insert(Account.__table__), rows)
            accounts = conn.execute(select(Account.__table__.c.id, Account.__table__.c.tenant_id)).all()
        by_tenant: dict[int, list[int]] = {}
        for account_id, tenant_id in accounts:
            by_tenant.setdefault(tenant_id, []).append(account_id)
        shares = [(tenant_ids[s], share) for s, _, share, _ in RESELLERS]

        cols = ("tenant_id", "account_id", "server", "uniqueid", "linkedid", "extension", "destination",
                "started_at", "answered_at", "ended_at", "billsec", "disposition", "rated_at", "country", "rate_id",
                "cost", "bundle_seconds", "charged_seconds", "buy_cost", "rating_error", "created_at", "recovered")
        span = DAYS * 86400
        base = datetime.combine(START, datetime.min.time())
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cur:
                with cur.copy(f"COPY calls ({', '.join(cols)}) FROM STDIN") as copy:
                    for i in range(n_calls):
                        tenant = pick(rng, shares)[0]
                        account = rng.choice(by_tenant[tenant])
                        prefix, country = pick(rng, DESTINATIONS)
                        disposition = pick(rng, DISPOSITIONS)[0]
                        started = base + timedelta(seconds=rng.randrange(span))
                        billsec = rng.randint(1, 600) if disposition == "ANSWERED" else 0
                        r = rng.random()
                        if r < 0.02:
                            rated_at, cost, error, rated_country = None, None, "", ""
                        elif r < 0.03:
                            rated_at, cost, rated_country = started + timedelta(seconds=billsec + 2), Decimal(0), country
                            error = f"{country} (prefix {prefix}) is not opened by the plan" if billsec else ""
                        else:
                            rated_at, error, rated_country = started + timedelta(seconds=billsec + 2), "", country
                            cost = (Decimal(billsec) * Decimal("0.0002")).quantize(Decimal("0.0001"))
                        number = prefix + str(rng.randrange(10**8, 10**9))
                        copy.write_row((tenant, account, "pbx1", f"{started.timestamp():.0f}.{i}", "", "1000",
                                        number, started, started if billsec else None,
                                        started + timedelta(seconds=billsec + 5), billsec, disposition, rated_at,
                                        rated_country, None, cost, 0, billsec, None, error, started, False))
            raw.commit()
        finally:
            raw.close()
        built = time.perf_counter() - t0
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE calls, accounts, tenants, users"))
        print(f"built {n_calls:,} calls of {len(accounts):,} accounts in {len(tenant_ids)} resellers by COPY "
              f"in {built:.1f} s (+ VACUUM ANALYZE)")
        db.session.remove()
    return {"tenants": tenant_ids}


def stored_info(app) -> dict:
    """Tenant ids by slug and login ids by slug ("admin" for the platform admin), from the schema."""
    from app.logins.models import User
    from tenants.models import Tenant

    with app.app_context(), unscoped():
        info = {"tenants": dict(db.session.execute(select(Tenant.slug, Tenant.id)).all()), "logins": {}}
        for email, uid in db.session.execute(select(User.email, User.id)).all():
            if email == "admin@platform.example":
                info["logins"]["admin"] = uid
            elif email.startswith("owner@"):
                info["logins"][email.split("@")[1].removesuffix(".example")] = uid
        db.session.remove()
    return info


# --- what is timed -------------------------------------------------------------------------------

def scope_of(slug, info):
    if slug == "admin":
        return EVERYTHING
    tid = info["tenants"][slug]
    return Scope(tenant_ids=subtree_ids(db.session, tid), home_tenant_id=tid)


def offset_page(cq, resolved, offset):
    """The baseline: one scoped query, ORDER BY ... OFFSET n LIMIT size."""
    stmt = (select(Call.started_at, Call.id).where(*browser.where_clauses(cq, resolved))
            .order_by(Call.started_at.desc(), Call.id.desc()).offset(offset).limit(cq.size + 1))
    keys = [tuple(r) for r in db.session.execute(stmt)]
    return browser.load_rows([k[1] for k in keys[:cq.size]])


def timed(fn, rounds, best_of=1):
    """ms per round; best_of > 1 keeps the fastest of that many runs in a row (on a machine
    shared with other work, that filters out the time spent waiting for a CPU)."""
    out = []
    for _ in range(rounds):
        best = None
        for _ in range(best_of):
            t0 = time.perf_counter()
            fn()
            ms = (time.perf_counter() - t0) * 1000
            db.session.rollback()
            best = ms if best is None else min(best, ms)
        out.append(best)
    return out


def interleaved(fa, fb, rounds_a, rounds_b, best_of):
    """Time two functions in alternation (a burst of load on the host hits both alike)."""
    a, b = [], []
    for i in range(max(rounds_a, rounds_b)):
        if i < rounds_a:
            a += timed(fa, 1, best_of)
        if i < rounds_b:
            b += timed(fb, 1, best_of)
    return a, b


def pct(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def deep_key(cq, resolved, depth):
    """The (started_at, id) of the call `depth` rows into the filter, newest first."""
    stmt = (select(Call.started_at, Call.id).where(*browser.where_clauses(cq, resolved))
            .order_by(Call.started_at.desc(), Call.id.desc()).offset(depth - 1).limit(1))
    return tuple(db.session.execute(stmt).one())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--best-of", type=int, default=3, help="keep the fastest of N runs in a row (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the bench_calls schema afterwards")
    ap.add_argument("--reuse", action="store_true", help="use a kept bench_calls schema instead of building")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    app = create_app(BenchConfig)
    if not args.reuse:
        build(app, args.calls, rng)
    info = stored_info(app)

    whole = {"from": START.isoformat(), "to": (START + timedelta(days=DAYS - 1)).isoformat()}
    month = {"from": "2026-10-01", "to": "2026-10-31"}
    with app.app_context():
        with unscoped():
            sample_account = db.session.execute(
                select(Account.account_number).where(Account.tenant_id == info["tenants"]["mid"]).limit(1)).scalar()
            db.session.rollback()
    deep = min(200_000, args.calls // 5)
    cases = [   # (label, login, query args, deep: rows into the filter for the keyset page, or 0)
        ("first page, big reseller", "big", whole, 0),
        ("first page, small reseller", "small", whole, 0),
        ("first page, admin (20 tenants)", "admin", whole, 0),
        (f"deep page ({deep:,} in), big", "big", whole, deep),
        (f"deep page ({deep:,} in), admin", "admin", whole, deep),
        ("filter destination 447, big", "big", {**whole, "destination": "447"}, 0),
        ("filter country FR, mid", "mid", {**whole, "destination": "FR"}, 0),
        ("filter BUSY, small", "small", {**whole, "disposition": "BUSY"}, 0),
        ("filter rating error, big", "big", {**whole, "rating": "error"}, 0),
        ("filter unrated, admin", "admin", {**whole, "rating": "unrated"}, 0),
        ("filter one account, mid", "mid", {**whole, "account": sample_account}, 0),
        ("admin, reseller = mid", "admin", {**whole, "reseller": str(info["tenants"]["mid"])}, 0),
    ]
    load = os.getloadavg()[0]
    print(f"\nms per call of app/calls/browser.py, {args.rounds} rounds (best of {args.best_of} each, keyset and "
          f"OFFSET alternating); load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"  {'':<34} {'keyset p50':>10} {'p95':>7} {'OFFSET p50':>11} {'p95':>7} {'ratio p50':>9} {'p95':>6}")
    ratios = []
    deep_cursor = ""
    with app.app_context():
        for label, slug, qargs, depth in cases:
            with use_scope(scope_of(slug, info)):
                cq = browser.CallQuery.from_args(qargs)
                resolved = browser.resolve(cq)
                if depth:
                    key = deep_key(cq, resolved, depth)
                    deep_cursor = browser.encode_cursor(*key)
                    cq = browser.CallQuery.from_args({**qargs, "older": browser.encode_cursor(*key)})
                browser.page(cq, resolved)                            # warm
                offset_page(cq, resolved, depth)
                offset_rounds = max(3, args.rounds // 3) if depth else args.rounds
                keyset, offset = interleaved(lambda: browser.page(cq, resolved),
                                             lambda: offset_page(cq, resolved, depth),
                                             args.rounds, offset_rounds, args.best_of)
                check = [r.id for r in browser.page(cq, resolved).rows] == [r.id for r in offset_page(cq, resolved, depth)]
                db.session.rollback()
            ratios.append(pct(offset, 50) / pct(keyset, 50))
            print(f"  {label:<34} {pct(keyset, 50):10.1f} {pct(keyset, 95):7.1f} {pct(offset, 50):11.1f} "
                  f"{pct(offset, 95):7.1f} {pct(offset, 50) / pct(keyset, 50):8.1f}x "
                  f"{pct(offset, 95) / pct(keyset, 95):5.1f}x{'' if check else '  (pages differ!)'}")
        print(f"  geometric mean of the p50 ratios: {statistics.geometric_mean(ratios):.1f}x")

        print("\nASR/ACD aggregate over the whole filter (one query), ms")
        for label, slug, qargs in (("big, 90 days (~600,000 calls)", "big", whole),
                                   ("big, one month", "big", month),
                                   ("small, 90 days", "small", whole),
                                   ("admin, 90 days (every call)", "admin", whole),
                                   ("admin, one month, BUSY", "admin", {**month, "disposition": "BUSY"}),
                                   ("mid, one account, 90 days", "mid", {**whole, "account": sample_account})):
            with use_scope(scope_of(slug, info)):
                cq = browser.CallQuery.from_args(qargs)
                resolved = browser.resolve(cq)
                f = browser.figures(cq, resolved)
                t = timed(lambda: browser.figures(cq, resolved), max(3, args.rounds // 3), args.best_of)
            print(f"  {label:<34} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}   "
                  f"({f.attempts:,} calls, ASR {f.asr} %, ACD {f.acd_seconds} s)")

        print("\nCSV export (batches of %d as the streamed response reads them)" % browser.EXPORT_BATCH)
        for label, slug, qargs in (("mid, one month", "mid", month), ("big, 90 days", "big", whole)):
            with use_scope(scope_of(slug, info)):
                cq = browser.CallQuery.from_args(qargs)
                resolved = browser.resolve(cq)
                t0 = time.perf_counter()
                n, size, after, peak = 0, 0, None, 0
                while True:
                    text_, after = browser.export_batch(cq, resolved, after)
                    n += text_.count("\r\n")
                    size += len(text_)
                    peak = max(peak, len(text_))
                    db.session.rollback()
                    if after is None:
                        break
                seconds = time.perf_counter() - t0
            print(f"  {label:<34} {n:,} rows, {size / 2**20:.1f} MB in {seconds:.1f} s = {n / seconds:,.0f} rows/s; "
                  f"largest batch {peak / 2**20:.2f} MB")

    print("\nwhole HTTP request (Flask test client, htmx swap; the list, then its figures request), ms")
    for label, slug, qargs, path in (("big, list, one month", "big", month, "/reseller/calls"),
                                     ("big, figures, one month", "big", month, "/reseller/calls/figures"),
                                     ("small, list, 90 days", "small", whole, "/reseller/calls"),
                                     ("small, figures, 90 days", "small", whole, "/reseller/calls/figures"),
                                     ("admin, list, one month", "admin", month, "/admin/calls"),
                                     ("admin, list, deep keyset page", "admin",
                                      {**whole, "older": deep_cursor}, "/admin/calls")):
        c = app.test_client()
        with c.session_transaction() as s:
            s["_user_id"], s["_fresh"] = str(info["logins"][slug]), True
        # Each request in a fresh context, as in production (the test client would otherwise
        # share this app context's `g`, and with it the first login's cached user).
        contextvars.Context().run(c.get, path, query_string=qargs)
        t = []
        for _ in range(max(3, args.rounds // 3)):
            t0 = time.perf_counter()
            resp = contextvars.Context().run(c.get, path, query_string=qargs, headers={"HX-Request": "true"})
            t.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.status_code
        print(f"  {label:<34} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}")
    print(f"\nload average now {os.getloadavg()[0]:.1f}")

    if not args.keep:
        with app.app_context():
            db.session.remove()
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            db.engine.dispose()


if __name__ == "__main__":
    main()
