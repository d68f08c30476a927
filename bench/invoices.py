"""The invoicing run at 10,000 postpaid accounts with 100 rated calls each (issue 17, point 7).

    .venv/bin/python bench/invoices.py [--accounts 10000] [--calls 100] [--baseline 500]
                                       [--batch 200] [--pdf-sample 50] [--keep]

Builds its own PostgreSQL schema (`bench_invoices`, dropped at the end unless --keep): one
reseller with two taxes (VAT 20%, a 1.5% compound levy), N postpaid accounts in three time
zones, each with a users charge, a number charge and `--calls` rated calls in November 2026
spread over 12 countries (calls and their `call:<id>` ledger debits written by binary COPY,
app/bulk.py), plus a few December calls that must not be invoiced. Then:

1. the run: `workers.invoicing.document_period(tenant, "2026-11")` as the worker runs it
   (batches of --batch accounts, one commit each): time and invoices/s;
2. the same run again (everything marked done: what a doubled cron tick costs);
3. a baseline in the same process: a second reseller of --baseline accounts of the same shape,
   invoiced one account at a time (`build_invoice` + `finalise_invoice` + commit per account,
   as a naive loop would): invoices/s and the ratio;
4. checks (printed, not asserted): one invoice per account, numbers 1..N without a gap,
   balance == sum(ledger);
5. PDF render time per invoice (p50/p95) over --pdf-sample invoices, through
   `pdf_render_times()`: it uses app/invoicing/render.py (the documents side) when that
   module is present, and says so when it is not.
The machine may be shared: compare the ratio, not the absolute figures, across runs.
"""
import argparse
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = "bench_invoices"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
os.environ["DATABASE_URL"] = f"{PG}?options=-csearch_path%3D{SCHEMA}"
os.environ.pop("REDIS_URL", None)          # jobs in-process: the bench measures the run, not a queue

from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.models import Account  # noqa: E402
from app.bulk import NUMERIC_BINARY, collector_paused, copy_rows, numeric_binary  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402
from tenants.scope import tenant_scope, unscoped  # noqa: E402

PERIOD = "2026-11"
AFTER = "2026-12-01T12:00:00+00:00"
ZONES = ("UTC", "Europe/London", "America/New_York")
COUNTRIES = ("GB", "US", "FR", "DE", "ES", "IT", "NL", "IE", "PL", "IN", "BR", "AU")


class BenchConfig(Config):
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = None
    JOBS_SYNCHRONOUS = True


def build(app, n_accounts: int, n_calls: int, n_baseline: int, rng: random.Random) -> dict:
    from app.cli.demo import ensure_platform
    from app.invoicing.taxes import create_tax
    from app.resellers.operations import create_tenant

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        db.create_all()
        with unscoped():
            root = ensure_platform()
            main = create_tenant(name="Big Voice", slug="big", email="ops@big.example", parent_id=root.id)
            base = create_tenant(name="Baseline Telecom", slug="base", email="ops@base.example", parent_id=root.id)
            db.session.flush()
            taxes = {}
            for t in (main, base):
                taxes[t.id] = [create_tax(t.id, name="VAT 20%", rate="20", position=1).id,
                               create_tax(t.id, name="Levy", rate="1.5", position=2, compound=True).id]
            db.session.commit()
            ids = {"main": main.id, "base": base.id}
        db.session.remove()
        t0 = time.perf_counter()
        counts = {}
        with collector_paused():
            next_call = 1
            for key, n in (("main", n_accounts), ("base", n_baseline)):
                next_call, counts[key] = _accounts_and_calls(ids[key], taxes[ids[key]], n, n_calls, next_call, rng,
                                                             prefix=key)
        with db.engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))"))
        built = time.perf_counter() - t0
    vacuum(app)
    return {"tenants": ids, "build_s": built, "counts": counts}


def _accounts_and_calls(tenant_id, tax_ids, n, n_calls, first_call, rng, *, prefix):
    """n postpaid accounts (plain INSERT), their calls and ledger entries (COPY), taxes, balances."""
    created = datetime(2026, 9, 1)
    rows = [{"tenant_id": tenant_id, "account_number": f"{9 if prefix == 'main' else 8}{i:09d}",
             "name": f"{prefix} account {i}", "email": f"a{i}@{prefix}.example", "billing_type": "postpaid",
             "currency": "USD", "timezone": ZONES[i % len(ZONES)], "credit_limit": Decimal("100000"),
             "balance": Decimal(0), "status": "active", "created_at": created, "updated_at": created,
             "version": 1, "address": f"{i} High Street", "city": "Leeds", "country": "GB"}
            for i in range(n)]
    with db.engine.begin() as conn:
        for chunk in range(0, len(rows), 5_000):
            conn.execute(insert(Account.__table__), rows[chunk:chunk + 5_000])
        account_ids = list(conn.execute(select(Account.id).where(Account.tenant_id == tenant_id)
                                        .order_by(Account.id)).scalars())
        conn.execute(text("INSERT INTO account_taxes (tenant_id, account_id, tax_id) "
                          "SELECT :t, a.id, x.tax_id FROM accounts a, unnest(CAST(:x AS integer[])) AS x(tax_id) "
                          "WHERE a.tenant_id = :t"), {"t": tenant_id, "x": tax_ids})
    costs = [Decimal(rng.randint(5, 4000)).scaleb(-4) for _ in range(2000)]
    session = db.session
    call_id = first_call
    call_rows, entry_rows = [], []
    start = datetime(2026, 11, 2)
    for account_id in account_ids:
        entry_rows.append((tenant_id, account_id, numeric_binary(Decimal("-25.00")), "user_charge",
                           f"account:{account_id}:users:{PERIOD}", "5 users × $5.00, 2026-11", datetime(2026, 11, 1, 6)))
        entry_rows.append((tenant_id, account_id, numeric_binary(Decimal("-2.50")), "number_charge",
                           f"account:{account_id}:number:1:{PERIOD}", "Number monthly, 2026-11", datetime(2026, 11, 1, 6)))
        for j in range(n_calls + 2):
            december = j >= n_calls                     # two calls after the period: not on this invoice
            at = datetime(2026, 12, 2, 10) if december else start + timedelta(minutes=rng.randint(0, 27 * 24 * 60))
            cost = costs[rng.randrange(len(costs))]
            seconds = rng.randint(10, 900)
            country = COUNTRIES[(account_id + j) % len(COUNTRIES)]
            call_rows.append((call_id, tenant_id, account_id, "bench", f"b{call_id}", "", "100", "4420",
                              at, at, at + timedelta(seconds=seconds), seconds, "ANSWERED", at, country,
                              numeric_binary(cost), 0, seconds, "", at, False))
            entry_rows.append((tenant_id, account_id, numeric_binary(-cost), "call", f"call:{call_id}",
                               f"Call to 4420, {seconds} s", at))
            call_id += 1
    call_cols = (("id", "int4"), ("tenant_id", "int4"), ("account_id", "int4"), ("server", "varchar"),
                 ("uniqueid", "varchar"), ("linkedid", "varchar"), ("extension", "varchar"),
                 ("destination", "varchar"), ("started_at", "timestamp"), ("answered_at", "timestamp"),
                 ("ended_at", "timestamp"), ("billsec", "int4"), ("disposition", "varchar"),
                 ("rated_at", "timestamp"), ("country", "varchar"), ("cost", NUMERIC_BINARY),
                 ("bundle_seconds", "int4"), ("charged_seconds", "int4"), ("rating_error", "varchar"),
                 ("created_at", "timestamp"), ("recovered", "bool"))
    entry_cols = (("tenant_id", "int4"), ("account_id", "int4"), ("amount", NUMERIC_BINARY), ("kind", "varchar"),
                  ("idempotency_key", "varchar"), ("description", "varchar"), ("created_at", "timestamp"))
    copy_rows(session, "calls", call_cols, call_rows)
    copy_rows(session, "ledger_entries", entry_cols, entry_rows)
    session.execute(text("UPDATE accounts a SET balance = s.total FROM (SELECT account_id, sum(amount) AS total "
                         "FROM ledger_entries WHERE tenant_id = :t GROUP BY account_id) s "
                         "WHERE a.id = s.account_id"), {"t": tenant_id})
    session.commit()
    session.remove()
    return call_id, {"accounts": len(account_ids), "calls": len(call_rows), "entries": len(entry_rows)}


def vacuum(app, tables=("accounts", "calls", "ledger_entries", "account_taxes", "taxes")):
    with app.app_context():
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for t in tables:
                conn.execute(text(f"VACUUM ANALYZE {t}"))


def run_batched(app, tenant_id: int, batch: int) -> tuple[float, dict]:
    from workers.invoicing import document_period

    with app.app_context():
        t0 = time.perf_counter()
        result = document_period(tenant_id, PERIOD, batch_size=batch, now=AFTER)
        return time.perf_counter() - t0, result


def run_one_by_one(app, tenant_id: int) -> tuple[float, int]:
    """The naive way: each account built, finalised and committed on its own."""
    from app.billing.schedule import Period
    from app.invoicing.invoices import build_invoice, finalise_invoice
    from datetime import date

    period = Period(date(2026, 11, 1), date(2026, 12, 1), PERIOD)
    with app.app_context():
        with tenant_scope(tenant_id, descendants=False):
            ids = list(db.session.execute(select(Account.id).where(Account.tenant_id == tenant_id)
                                          .order_by(Account.id)).scalars())
            db.session.commit()
            t0 = time.perf_counter()
            for account_id in ids:
                inv = build_invoice(account_id, period)
                finalise_invoice(inv.id)
                db.session.commit()
            return time.perf_counter() - t0, len(ids)
        db.session.remove()


def checks(app, tenant_id: int, n_accounts: int) -> dict:
    from app.invoicing.models import Invoice
    from app.ledger import balance_mismatches

    with app.app_context(), unscoped():
        rows = db.session.execute(select(func.count(), func.count(func.distinct(Invoice.account_id)),
                                         func.min(Invoice.sequence), func.max(Invoice.sequence),
                                         func.count(func.distinct(Invoice.sequence)))
                                  .where(Invoice.tenant_id == tenant_id)).one()
        sample = db.session.execute(select(Invoice).where(Invoice.tenant_id == tenant_id).order_by(Invoice.id)
                                    .limit(1)).scalar_one()
        lines = db.session.execute(text("SELECT count(*) FROM invoice_lines WHERE invoice_id = :i"),
                                   {"i": sample.id}).scalar()
        mismatches = len(balance_mismatches())
        out = {"invoices": rows[0], "accounts": rows[1], "gapless": (rows[2], rows[3], rows[4]) == (1, n_accounts, n_accounts)
               and rows[0] == n_accounts, "mismatches": mismatches, "sample": (sample.number, str(sample.subtotal),
                                                                              str(sample.tax_total), str(sample.total),
                                                                              lines)}
        db.session.remove()
    return out


def pdf_render_times(app, invoice_ids) -> list[float] | None:
    """The documents side's hook: seconds to render each invoice as a PDF, or None when the
    renderer (app/invoicing/render.py: invoice_document + render_pdf) is not on this branch."""
    try:
        from app.invoicing import render
    except ImportError:
        return None
    if not (hasattr(render, "invoice_document") and hasattr(render, "render_pdf")):
        return None
    times = []
    with app.app_context(), unscoped():
        for invoice_id in invoice_ids:
            t0 = time.perf_counter()
            render.render_pdf(render.invoice_document(invoice_id))
            times.append(time.perf_counter() - t0)
        db.session.remove()
    return times


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--baseline", type=int, default=500, help="accounts invoiced one at a time (0: skip)")
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--pdf-sample", type=int, default=50)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--keep", action="store_true", help="keep the bench_invoices schema afterwards")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    app = create_app(BenchConfig)
    try:
        info = build(app, args.accounts, args.calls, args.baseline, rng)
        c = info["counts"]["main"]
        print(f"data: {c['accounts']:,} postpaid accounts, {c['calls']:,} rated calls, {c['entries']:,} ledger entries "
              f"(+ baseline {info['counts']['base']['accounts']:,} accounts) built in {info['build_s']:.1f} s")
        # The run queues one "invoice issued" email per invoice (app/invoicing/mail.announce), and
        # with jobs in-process each would render its PDF inside the run's timing: the emails are
        # off here, and the PDF render time is measured on its own below (bench/invoice_pdf.py too).
        import app.invoicing.mail as invoice_mail

        invoice_mail.announce = lambda invoices: None
        seconds, result = run_batched(app, info["tenants"]["main"], args.batch)
        rate = result["invoiced"] / seconds if seconds else 0
        print(f"run (batches of {args.batch}, one commit each): {result['invoiced']:,} invoices in {seconds:.1f} s "
              f"= {rate:,.0f} invoices/s; skipped {result['skipped']}, failed {result['failed']}")
        again, result2 = run_batched(app, info["tenants"]["main"], args.batch)
        print(f"same period again: {again:.2f} s, {result2['this_job']} accounts touched")
        if args.baseline:
            naive_s, naive_n = run_one_by_one(app, info["tenants"]["base"])
            naive_rate = naive_n / naive_s if naive_s else 0
            print(f"baseline, one account at a time: {naive_n:,} invoices in {naive_s:.1f} s = {naive_rate:,.0f} "
                  f"invoices/s; the batched run is {rate / naive_rate:.1f}x")
        chk = checks(app, info["tenants"]["main"], args.accounts)
        print(f"checks: {chk['invoices']:,} invoices for {chk['accounts']:,} accounts; numbers 1..N gapless: "
              f"{chk['gapless']}; balance mismatches: {chk['mismatches']}; first invoice {chk['sample'][0]} "
              f"subtotal {chk['sample'][1]} tax {chk['sample'][2]} total {chk['sample'][3]}, "
              f"{chk['sample'][4]} lines")
        if args.pdf_sample:
            with app.app_context(), unscoped():
                from app.invoicing.models import Invoice

                ids = list(db.session.execute(select(Invoice.id).where(Invoice.tenant_id == info["tenants"]["main"])
                                              .order_by(Invoice.id).limit(args.pdf_sample)).scalars())
                db.session.remove()
            times = pdf_render_times(app, ids)
            if times is None:
                print("PDF: app/invoicing/render.py (the documents side) is not on this branch: no render times")
            else:
                print(f"PDF render per invoice over {len(times)}: p50 {statistics.median(times) * 1000:.0f} ms, "
                      f"p95 {_pct(times, 95) * 1000:.0f} ms")
        print("(shared machine: figures vary with the other work on it; compare ratios)")
    finally:
        if not args.keep:
            with app.app_context():
                db.session.remove()
                with db.engine.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                db.engine.dispose()


if __name__ == "__main__":
    main()
