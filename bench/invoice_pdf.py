"""Invoice documents: render time per invoice, HTML and PDF (issue 17, point 7, "PDF render time
per invoice (p50/p95)").

    .venv/bin/python bench/invoice_pdf.py [--accounts 300] [--calls 100] [--sample 200] [--keep]

Builds its own PostgreSQL schema (`bench_invoice_pdf`, dropped at the end unless --keep):
one reseller with invoice settings (an SVG logo, a footer, VAT 20 %), `--accounts` postpaid
accounts each with a service plan, a user charge, a number and `--calls` rated calls over 8
destinations (each call with its rate and ledger debit `call:<id>`) in November 2026. The
invoicing run (workers.invoicing.document_period, the emails switched off so nothing renders in
the background) issues the invoices; then, for `--sample` of them, one at a time as the email
job and the portals do:

- build: the document's context (queries: invoice, lines, taxes, payment summary, settings);
- html: build + Jinja;
- pdf: build + Jinja + WeasyPrint (layout and PDF);
- pdf + rate table: the same with "include the rate table" on (one more query over the calls);
- floor: WeasyPrint alone on a one-line page in the same process (what any PDF costs here).

Prints p50/p95/mean in ms, PDF sizes, and ratios against the floor measured in the same run.
The first PDF of the process (fonts loaded) is timed apart and left out. Asserts nothing.
"""
import argparse
import os
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = "bench_invoice_pdf"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
os.environ["DATABASE_URL"] = f"{PG}?options=-csearch_path%3D{SCHEMA}"
os.environ.pop("REDIS_URL", None)

from sqlalchemy import func, insert, select, text, update  # noqa: E402

from app import create_app  # noqa: E402
from app.config import Config  # noqa: E402
from app.extensions import db  # noqa: E402
from tenants.scope import tenant_scope, unscoped  # noqa: E402

LOGO = (b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="56" viewBox="0 0 300 56">'
        b'<rect x="0" y="4" width="48" height="48" rx="10" fill="#1d4ed8"/>'
        b'<text x="60" y="38" font-family="DejaVu Sans" font-size="26" font-weight="bold">Bench Telecom</text></svg>')
DESTINATIONS = [("4420", "GB", "United Kingdom London", "0.0100"), ("447", "GB", "United Kingdom mobile", "0.0500"),
                ("49", "DE", "Germany", "0.0200"), ("33", "FR", "France", "0.0300"), ("1", "US", "United States", "0.0080"),
                ("34", "ES", "Spain", "0.0250"), ("39", "IT", "Italy", "0.0270"), ("31", "NL", "Netherlands", "0.0220")]
NOVEMBER = datetime(2026, 11, 1)


class BenchConfig(Config):
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = None
    JOBS_SYNCHRONOUS = False


def build(app, n_accounts: int, n_calls: int, rng: random.Random) -> int:
    from app.accounts.models import Account
    from app.accounts.operations import create_account
    from app.calls.models import Call
    from app.cli.demo import ensure_platform
    from app.invoicing.models import InvoiceSettings
    from app.invoicing.taxes import create_tax, set_account_taxes
    from app.ledger import LedgerEntry
    from app.rating.models import Rate, RateSheet
    from app.resellers.operations import create_tenant

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        db.create_all()
        with unscoped():
            root = ensure_platform()
            tenant = create_tenant(name="Bench Telecom", slug="bench", parent_id=root.id, email="b@bench.example")
            db.session.add(InvoiceSettings(tenant_id=tenant.id, **{**InvoiceSettings.DEFAULTS,
                                           "legal_name": "Bench Telecom Ltd", "address": "1 Bench Road\nLondon",
                                           "tax_number": "GB123456789", "email": "billing@bench.example",
                                           "footer": "Bench Telecom Ltd · IBAN GB00 BENCH 0000 0000", "logo": LOGO,
                                           "logo_type": "image/svg+xml"}))
            db.session.commit()
            tenant_id = tenant.id
        with tenant_scope(tenant_id):
            vat = create_tax(tenant_id, name="VAT 20%", rate="20", position=1)
            sheet = RateSheet(tenant_id=tenant_id, name="Bench", currency="USD")
            db.session.add(sheet)
            db.session.flush()
            rates = []
            for prefix, country, desc, per_minute in DESTINATIONS:
                r = Rate(tenant_id=tenant_id, rate_sheet_id=sheet.id, prefix=prefix, country=country, description=desc,
                         rate_per_minute=Decimal(per_minute))
                db.session.add(r)
                db.session.flush()
                rates.append(r)
            accounts = []
            for n in range(n_accounts):
                a = create_account(tenant_id=tenant_id, name=f"Bench customer {n}", email=f"c{n}@bench.example",
                                   billing_type="postpaid", credit_limit=Decimal("10000"), company=f"Customer {n} Ltd",
                                   address=f"{n} High Street", city="Leeds", postcode="LS1 1AA", country="GB")
                set_account_taxes(a, [vat.id])
                accounts.append(a.id)
            db.session.commit()
        with unscoped():
            db.session.execute(update(Account).values(created_at=datetime(2026, 9, 1)))
            call_rows, entry_rows = [], []
            call_id = 0
            for account_id in accounts:
                for kind, amount, key, desc in (("recurring", "-25.00", "plan", "Service plan Business (monthly)"),
                                                ("user_charge", "-18.00", "users", "Users × 4 at 4.50"),
                                                ("number_charge", "-2.00", "number", "Number +44 20 7946 0000")):
                    entry_rows.append(dict(tenant_id=tenant_id, account_id=account_id, amount=Decimal(amount), kind=kind,
                                           idempotency_key=f"account:{account_id}:{key}:2026-11", description=desc,
                                           created_at=NOVEMBER + timedelta(hours=1)))
                for _ in range(n_calls):
                    call_id += 1
                    r = rng.choice(rates)
                    seconds = rng.randint(5, 900)
                    cost = (Decimal(r.rate_per_minute) * seconds / 60).quantize(Decimal("0.0001"))
                    at = NOVEMBER + timedelta(seconds=rng.randint(3600, 29 * 86400))
                    call_rows.append(dict(id=call_id, tenant_id=tenant_id, account_id=account_id, server="bench",
                                          uniqueid=f"bench.{call_id}", destination=r.prefix + "5550000", started_at=at,
                                          billsec=seconds, charged_seconds=seconds, disposition="ANSWERED",
                                          country=r.country, rate_id=r.id, cost=cost, rated_at=at))
                    entry_rows.append(dict(tenant_id=tenant_id, account_id=account_id, amount=-cost, kind="call",
                                           idempotency_key=f"call:{call_id}", description=f"Call {call_id}",
                                           created_at=at))
            for i in range(0, len(call_rows), 5000):
                db.session.execute(insert(Call), call_rows[i:i + 5000])
            for i in range(0, len(entry_rows), 5000):
                db.session.execute(insert(LedgerEntry), entry_rows[i:i + 5000])
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))"))
            db.session.execute(text("UPDATE accounts a SET balance = s.total FROM (SELECT account_id, sum(amount) AS total "
                                    "FROM ledger_entries GROUP BY account_id) s WHERE s.account_id = a.id"))
            db.session.commit()
        return tenant_id


def issue(app, tenant_id: int) -> list[int]:
    import app.invoicing.mail as mail
    from app.invoicing.models import Invoice
    from workers.invoicing import document_period

    announce, mail.announce = mail.announce, lambda invoices: None     # no email renders during the run
    try:
        with app.app_context():
            t = time.perf_counter()
            result = document_period(tenant_id, "2026-11", now="2026-12-01T12:00:00+00:00")
            elapsed = time.perf_counter() - t
            print(f"invoicing run: {result.get('invoiced')} invoices in {elapsed:.1f} s")
            with unscoped():
                return list(db.session.execute(select(Invoice.id).where(Invoice.kind == "invoice")
                                               .order_by(Invoice.id)).scalars())
    finally:
        mail.announce = announce


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(name, ms, floor=None):
    line = f"{name:<22} p50 {pct(ms, 50):7.1f} ms  p95 {pct(ms, 95):7.1f} ms  mean {statistics.mean(ms):7.1f} ms"
    if floor:
        line += f"   x{statistics.median(ms) / floor:5.1f} the floor (p50)"
    print(line)


def measure(app, tenant_id: int, ids: list[int], sample: int, rng: random.Random):
    from app.invoicing import render
    from app.invoicing.models import InvoiceSettings

    chosen = rng.sample(ids, min(sample, len(ids)))
    with app.app_context(), tenant_scope(tenant_id):
        t = time.perf_counter()
        render.render_pdf(render.document("invoice", chosen[0]))
        print(f"first PDF of the process (fonts loaded): {1000 * (time.perf_counter() - t):.0f} ms")
        floor = []
        for _ in range(30):
            t = time.perf_counter()
            render.html_to_pdf("<html><body><p>floor</p></body></html>")
            floor.append(1000 * (time.perf_counter() - t))
        floor_p50 = statistics.median(floor)
        results = {}
        for label, rate_table in (("pdf", False), ("pdf + rate table", True)):
            db.session.execute(update(InvoiceSettings).values(include_rate_table=rate_table))
            db.session.commit()
            b, h, p, sizes = [], [], [], []
            for invoice_id in chosen:
                db.session.expire_all()
                t0 = time.perf_counter()
                doc = render.document("invoice", invoice_id)
                t1 = time.perf_counter()
                html = render.render_html(doc)
                t2 = time.perf_counter()
                pdf = render.html_to_pdf(html)
                t3 = time.perf_counter()
                b.append(1000 * (t1 - t0))
                h.append(1000 * (t2 - t0))
                p.append(1000 * (t3 - t0))
                sizes.append(len(pdf))
            results[label] = (b, h, p, sizes)
        print(f"\n{len(chosen)} invoices of {len(ids)}, one at a time (ms per invoice)")
        report("floor (1-line PDF)", floor)
        b, h, p, sizes = results["pdf"]
        report("build (queries)", b)
        report("html", h)
        report("pdf", p, floor_p50)
        print(f"{'':<22} PDF size p50 {pct(sizes, 50) / 1024:.0f} KB")
        b, h, p, sizes = results["pdf + rate table"]
        report("build + rate table", b)
        report("pdf + rate table", p, floor_p50)
        print(f"{'':<22} PDF size p50 {pct(sizes, 50) / 1024:.0f} KB")
        pdfs_per_s = 1000 / statistics.mean(results["pdf"][2])
        print(f"\none process renders about {pdfs_per_s:.0f} invoice PDFs/s "
              f"({len(ids) / pdfs_per_s:.0f} s for this run's {len(ids)} invoices)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=300)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    rng = random.Random(17)
    app = create_app(BenchConfig)
    print(f"machine: {os.cpu_count()} cores (shared with other work: figures are noisy; ratios are in-run)")
    t = time.perf_counter()
    tenant_id = build(app, args.accounts, args.calls, rng)
    print(f"built {args.accounts} accounts x {args.calls} calls in {time.perf_counter() - t:.1f} s")
    ids = issue(app, tenant_id)
    measure(app, tenant_id, ids, args.sample, rng)
    if not args.keep:
        with app.app_context():
            db.session.remove()
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))


if __name__ == "__main__":
    main()
