"""Rating engine figures: in-memory rating speed against one SQL query per call, deck parsing.

    .venv/bin/python bench/rating_engine.py [--calls 1000000] [--prefixes 60000] [--deck-rows 170000]

Prints figures and ratios; asserts nothing. The SQL baseline is the kindest one possible:
SQLite in memory, same process, primary-key index, one query per call for the longest prefix
(a networked PostgreSQL adds a round trip on top of each of those queries); SQLAlchemy Core
on the same SQLite shows what the app's own query layer adds. Figures are the best of --runs.
"""
import argparse
import os
import random
import sqlite3
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE  # noqa: E402

from app.rating.cost import Tariff, call_cost  # noqa: E402
from app.rating.countries import country_for_prefix  # noqa: E402
from app.rating.deck import export_deck, parse_deck  # noqa: E402
from app.rating.index import PrefixIndex, dialled_digits  # noqa: E402

CURRENCY = "USD"
PLACES = 4          # call charge precision: a new reseller's default (docs/rating.md)
BILLING = [(1, 1), (30, 6), (60, 60), (60, 1), (0, 60)]


def make_tariffs(n: int, rng: random.Random) -> list[Tariff]:
    """An A–Z deck: every country code, then longer area/mobile prefixes under them."""
    codes = [str(c) for c in COUNTRY_CODE_TO_REGION_CODE if c not in (0, 999)]
    prefixes, seen = [], set()
    while len(prefixes) < n:
        p = codes[len(prefixes)] if len(prefixes) < len(codes) else \
            rng.choice(codes) + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))
        if p not in seen:
            seen.add(p)
            prefixes.append(p)
    out = []
    for p in prefixes:
        fb, inc = rng.choice(BILLING)
        rate = Decimal(rng.randint(10, 900_000)).scaleb(-6)
        connect = Decimal(rng.choice([0, 0, 0, 500, 10_000])).scaleb(-6)
        minimum = Decimal(rng.choice([0, 0, 0, 0, 20_000])).scaleb(-6)
        out.append(Tariff(p, country_for_prefix(p), f"Destination {p}", rate, connect, fb, inc, minimum))
    return out


def make_calls(tariffs: list[Tariff], n: int, rng: random.Random):
    numbers, durations = [], []
    for _ in range(n):
        if rng.random() < 0.01:
            number = "999" + str(rng.randrange(10 ** 8, 10 ** 9))       # no route
        else:
            p = rng.choice(tariffs).prefix
            number = p + "".join(rng.choice("0123456789") for _ in range(max(0, rng.randint(10, 13) - len(p))))
            number = rng.choice(["", "", "+", "00"]) + number
        numbers.append(number)
        durations.append(0 if rng.random() < 0.3 else min(int(rng.expovariate(1 / 180)) + 1, 7200))
    return numbers, durations


def per_second(n: int, seconds: float) -> str:
    return f"{n / seconds:>14,.0f} calls/s"


def sql_rows(tariffs):
    return [(t.prefix, t.country, t.description, str(t.rate_per_minute), str(t.connect_fee),
             t.first_block, t.increment, str(t.minimum_charge)) for t in tariffs]


def heads(number: str) -> list[str]:
    digits = dialled_digits(number)
    return [digits[:k] for k in range(1, 16)]       # every possible prefix of the number


def tariff_of(row) -> Tariff:
    return Tariff(row[0], row[1], row[2], Decimal(row[3]), Decimal(row[4]), row[5], row[6], Decimal(row[7]))


def sqlite_rater(tariffs):
    """Kindest SQL: stdlib sqlite3 in memory, primary-key lookup of all the number's heads."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE rate (prefix TEXT PRIMARY KEY, country TEXT, description TEXT, rate TEXT,"
               " connect_fee TEXT, first_block INT, increment INT, minimum_charge TEXT)")
    db.executemany("INSERT INTO rate VALUES (?,?,?,?,?,?,?,?)", sql_rows(tariffs))
    sql = f"SELECT * FROM rate WHERE prefix IN ({','.join('?' * 15)}) ORDER BY length(prefix) DESC LIMIT 1"

    def rate(number, duration):
        row = db.execute(sql, heads(number)).fetchone()
        return call_cost(duration, tariff_of(row), CURRENCY, places=PLACES) if row else None
    return rate


def sqlalchemy_rater(tariffs, url: str):
    """What the app would write: a SQLAlchemy Core select per call. SQLite in memory by default;
    --sql-url postgresql+psycopg://… measures a real server (a temporary table, dropped after)."""
    import sqlalchemy as sa
    conn = sa.create_engine(url).connect()
    meta = sa.MetaData()
    rate = sa.Table("bench_rate", meta, sa.Column("prefix", sa.String, primary_key=True),
                    *(sa.Column(c, sa.String) for c in ("country", "description", "rate", "connect_fee")),
                    sa.Column("first_block", sa.Integer), sa.Column("increment", sa.Integer),
                    sa.Column("minimum_charge", sa.String), prefixes=["TEMPORARY"])
    meta.create_all(conn)
    conn.execute(rate.insert(), [dict(zip(rate.c.keys(), r)) for r in sql_rows(tariffs)])
    conn.commit()

    def rate_call(number, duration):
        query = (sa.select(rate).where(rate.c.prefix.in_(heads(number)))
                 .order_by(sa.func.length(rate.c.prefix).desc()).limit(1))
        row = conn.execute(query).first()
        return call_cost(duration, tariff_of(row), CURRENCY, places=PLACES) if row else None
    return rate_call


def best_of(runs: int, fn):
    """Fastest of a few runs: the figure least disturbed by other work on the machine."""
    best, result = None, None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--prefixes", type=int, default=60_000)
    ap.add_argument("--deck-rows", type=int, default=170_000)
    ap.add_argument("--scalar-calls", type=int, default=200_000)
    ap.add_argument("--sql-calls", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sql-url", default="sqlite://", help="SQLAlchemy URL for the per-call query baseline")
    args = ap.parse_args()
    rng = random.Random(20261122)

    tariffs = make_tariffs(args.prefixes, rng)
    numbers, durations = make_calls(tariffs, args.calls, rng)
    start = time.perf_counter()
    index = PrefixIndex(tariffs)
    print(f"index of {len(index):,} prefixes built in {time.perf_counter() - start:.3f} s")

    t_batch, batch = best_of(args.runs, lambda: index.rate_batch(numbers, durations, CURRENCY, places=PLACES))
    t_decimals, costs = best_of(1, batch.costs)
    print(f"batch   rate_batch, {args.calls:,} calls:           {per_second(args.calls, t_batch)}"
          f"  ({t_batch:.3f} s; total {batch.total()} {CURRENCY}; {batch.unrouted:,} without route)")
    print(f"batch   + a Decimal per call (costs()):        {per_second(args.calls, t_batch + t_decimals)}")

    k = min(args.scalar_calls, args.calls)
    pairs = list(zip(numbers[:k], durations[:k]))
    t_scalar, scalar = best_of(args.runs, lambda: [index.rate(n, d, CURRENCY, places=PLACES) for n, d in pairs])
    print(f"scalar  index.rate, {k:,} calls:               {per_second(k, t_scalar)}")

    def reference_path():
        out = []
        for n, d in pairs:
            t = index.lookup(n)
            out.append(None if t is None else call_cost(d, t, CURRENCY, places=PLACES))
        return out
    t_ref, reference = best_of(args.runs, reference_path)
    print(f"scalar  lookup + call_cost (Decimal), {k:,}:  {per_second(k, t_ref)}")
    mismatches = sum(1 for a, b, c in zip(costs, scalar, reference) if not (a == b == c))
    print(f"check   batch = index.rate = call_cost on {k:,} calls: {mismatches} mismatches")

    m = min(args.sql_calls, k)
    rate = sqlite_rater(tariffs)
    t_sqlite, _ = best_of(args.runs, lambda: [rate(n, d) for n, d in pairs[:m]])
    print(f"sql     sqlite3 in memory, a query per call, {m:,}: {per_second(m, t_sqlite)}")
    m2 = max(1, m // 4)
    rate = sqlalchemy_rater(tariffs, args.sql_url)
    t_sa, _ = best_of(args.runs, lambda: [rate(n, d) for n, d in pairs[:m2]])
    print(f"sql     SQLAlchemy Core, {args.sql_url.split(':')[0]}, {m2:,}:          {per_second(m2, t_sa)}")
    sqlite_rate, sa_rate = m / t_sqlite, m2 / t_sa
    for name, speed in (("batch", args.calls / t_batch), ("scalar index.rate", k / t_scalar)):
        print(f"ratio   {name}: {speed / sqlite_rate:,.0f}x sqlite3, {speed / sa_rate:,.0f}x SQLAlchemy")

    deck_tariffs = make_tariffs(args.deck_rows, random.Random(7))
    t_export, text = best_of(1, lambda: export_deck(deck_tariffs))
    t_parse, parsed = best_of(args.runs, lambda: parse_deck(text))
    cpu = time.process_time()
    parse_deck(text)
    cpu = time.process_time() - cpu
    print(f"deck    parse {len(parsed.rows):,} rows ({len(text) / 1e6:.1f} MB, {len(parsed.errors)} errors):"
          f" {t_parse:.3f} s ({cpu:.3f} s CPU); export {t_export:.3f} s")
    semicolon = text.replace(",", ";").replace("Prefix;ISO", "Dial code;ISO")
    semicolon = "\ufeff" + semicolon.replace("Rate;", "Price per minute;").replace(".", ",")
    t_semi, parsed = best_of(args.runs, lambda: parse_deck(semicolon))
    print(f"deck    parse {len(parsed.rows):,} rows, semicolons, decimal commas, BOM: {t_semi:.3f} s"
          f" ({len(parsed.errors)} errors)")
    print(f"machine load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (figures are best of {args.runs})")

if __name__ == "__main__":
    main()
