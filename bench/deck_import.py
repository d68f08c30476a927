"""Rate-deck import figures: a generated 170,000-row deck parsed and written to PostgreSQL.

    .venv/bin/python bench/deck_import.py [--rows 170000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Runs in its own schema (`bench_rating`, dropped and recreated). Prints, asserts nothing:
parse time, then the import into an empty sheet (COPY into a temporary table + one
INSERT … SELECT … ON CONFLICT), a re-import of the same deck (nothing changes, nothing is
rewritten), a replace with 10% of the prices changed and 5% of the rows gone, and the export.
Each import is the job's own code path (app.rating.imports.write_rows), one transaction each.
"""
import argparse
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402
from app.rating.deck import DeckRow, export_deck, parse_deck  # noqa: E402
from app.rating.imports import export_chunks, write_rows  # noqa: E402
from rating_engine import make_tariffs  # noqa: E402

SCHEMA = "bench_rating"


def bench_app(url: str):
    class BenchConfig(Config):
        SQLALCHEMY_DATABASE_URI = f"{url}?options=-csearch_path%3D{SCHEMA}"
        REDIS_URL = None
        SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    app = create_app(BenchConfig)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        db.create_all()
    return app


def timed(label, fn):
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<58} {elapsed:7.3f} s")
    return elapsed, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=170_000)
    ap.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    import logging
    logging.disable(logging.INFO)

    rng = random.Random(42)
    tariffs = make_tariffs(args.rows, rng)
    deck = export_deck(tariffs)
    print(f"deck: {args.rows:,} rows, {len(deck) / 1e6:.1f} MB of CSV")

    app = bench_app(args.url)
    with app.app_context():
        from app.rating.models import Rate, RateSheet
        from app.resellers.operations import create_tenant
        from tenants.scope import tenant_scope, unscoped

        from app.cli.demo import ensure_platform

        with unscoped():
            root = ensure_platform()
            db.session.flush()
            tenant = create_tenant(name="Bench reseller", slug="bench-reseller", parent_id=root.id,
                                   email="bench@example.com")
            db.session.commit()
        with tenant_scope(tenant.id):
            sheet = RateSheet(tenant_id=tenant.id, name="Bench deck", currency="USD")
            db.session.add(sheet)
            db.session.commit()

            t_parse, parsed = timed(f"parse_deck, {args.rows:,} rows", lambda: parse_deck(deck))
            assert not parsed.errors, parsed.errors[:3]

            def imported(mode, rows):
                def run():
                    n = write_rows(sheet, rows, mode)
                    db.session.commit()
                    return n
                return run

            t_first, (changed, _) = timed("import into an empty sheet (COPY + INSERT … SELECT)",
                                          imported("merge", parsed.rows))
            count = db.session.scalar(select(func.count()).select_from(Rate).where(Rate.rate_sheet_id == sheet.id))
            print(f"    {changed:,} rows written, {count:,} in the sheet")
            print(f"parse + import: {t_parse + t_first:.3f} s  ({args.rows / (t_parse + t_first):,.0f} rows/s; target ≤ 5 s)")

            t_same, (changed, _) = timed("re-import the same deck (merge; unchanged rows skipped)",
                                         imported("merge", parsed.rows))
            print(f"    {changed:,} rows written")

            kept = [r for r in parsed.rows if rng.random() >= 0.05]
            changed_rows = []
            for r in kept:
                if rng.random() < 0.10:
                    t = r.tariff
                    t2 = type(t)(t.prefix, t.country, t.description, t.rate_per_minute + Decimal("0.0001"),
                                 t.connect_fee, t.first_block, t.increment, t.minimum_charge)
                    changed_rows.append(DeckRow(r.line, t2, r.effective_from))
                else:
                    changed_rows.append(r)
            t_replace, (changed, deleted) = timed("replace: 10% prices changed, 5% of rows gone",
                                                  imported("replace", changed_rows))
            count = db.session.scalar(select(func.count()).select_from(Rate).where(Rate.rate_sheet_id == sheet.id))
            print(f"    {changed:,} rows written, {deleted:,} deleted, {count:,} in the sheet")

            from app.rating.imports import new_import, run_import

            sheet2 = RateSheet(tenant_id=tenant.id, name="Bench deck 2", currency="USD")
            db.session.add(sheet2)
            db.session.flush()
            imp = new_import(sheet2, deck.encode(), filename="deck.csv")
            db.session.commit()
            t_job, outcome = timed("the whole import job (run_import: file from the DB, parse, write)",
                                   lambda: run_import(imp.id))
            print(f"    {outcome['message']}")

            t_export, size = timed("export (streamed CSV, export_deck per 5,000 rows)",
                                   lambda: sum(len(part) for part in export_chunks(sheet.id)))
            print(f"    {size / 1e6:.1f} MB")
            db.session.commit()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    print(f"machine load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
