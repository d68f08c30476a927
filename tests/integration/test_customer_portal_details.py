"""The customer portal (issue 20, point 6): the account tab, transactions by date range with
CSV, bundle minutes used and left this period, and reports in the account's time zone."""
import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import select, update

from app import ledger
from app.accounts.models import Account
from app.billing.models import BundleUsage
from app.extensions import db
from app.ledger import LedgerEntry
from app.rating.cdr import rate_calls
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture

NEW_YORK = "America/New_York"     # UTC-5 in winter


def _set(account, **values):
    with unscoped():
        db.session.execute(update(Account).where(Account.id == account.id).values(**values))
        db.session.commit()


def _entry(account, amount, key, when, description=""):
    """A ledger entry (balance updated as ever), dated `when` (naive UTC)."""
    with unscoped():
        ledger.post(account.id, amount, "adjustment", key, description=description or key)
        db.session.execute(update(LedgerEntry).where(LedgerEntry.idempotency_key == key).values(created_at=when))
        db.session.commit()


def test_the_account_tab_shows_contact_details_and_where_phones_register(world, new_client, login, make_login):
    _set(world.account_a, company="Harbour Cafe Ltd", phone="+442079460018", address="1 Quay Street",
         city="Bristol", postcode="BS1 4DJ", country="GB", vat_number="GB123456789")
    html = login(new_client(), world.customer_a).get("/portal/account").get_data(as_text=True)
    for text in ("Harbour Cafe Ltd", "+442079460018", "1 Quay Street, BS1 4DJ Bristol, GB", "GB123456789",
                 "sip.ringledger.example", "5060"):
        assert text in html, text
    # every portal login may open it, whatever its permissions
    from app.logins.operations import create_portal_login
    with unscoped():
        user = create_portal_login(account_id=world.account_a.id, tenant_id=world.a.id, email="desk@harbour.example",
                                   name="Desk", password="desk-pass-123", permissions=[])
        db.session.commit()
    desk = login(new_client(), user)
    assert desk.get("/portal/account").status_code == 200
    assert desk.get("/portal/transactions").status_code == 403


def test_transactions_by_date_range_in_the_accounts_time_zone_with_opening_and_closing(world, new_client, login):
    a = world.account_a
    _set(a, timezone=NEW_YORK)
    _entry(a, "5.00", "oct-credit", datetime(2026, 10, 20, 12, 0))
    _entry(a, "-1.25", "nov-last-evening", datetime(2026, 12, 1, 4, 30))     # 30 Nov 23:30 in New York
    _entry(a, "20.00", "dec-top-up", datetime(2026, 12, 1, 5, 30))           # 1 Dec 00:30 in New York
    customer = login(new_client(), world.customer_a)
    html = customer.get("/portal/transactions?from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    assert "nov-last-evening" in html and "dec-top-up" not in html and "oct-credit" not in html
    assert "2026-11-30 23:30" in html                                         # shown in its zone
    figures = dict(re.findall(r'<small>(Opening balance [\d-]+|Credits|Charges|Closing balance [\d-]+)</small>'
                              r'<div class="figure">([^<]+)</div>', html))
    # Before 1 Nov (New York) there is only the October credit: the fixture's own credit is dated today.
    assert figures == {"Opening balance 2026-11-01": "$5.00", "Credits": "$0.00", "Charges": "-$1.25",
                       "Closing balance 2026-11-30": "$3.75"}
    body = customer.get("/portal/transactions.csv?from=2026-11-01&to=2026-12-02").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][0] == "Date (America/New_York)"
    assert [(r[0], r[1], r[3]) for r in rows[1:]] == [("2026-11-30 23:30:00", "nov-last-evening", "-1.2500"),
                                                     ("2026-12-01 00:30:00", "dec-top-up", "20.0000")]


def test_a_bad_range_says_so_next_to_the_field(world, new_client, login):
    customer = login(new_client(), world.customer_a)
    resp = customer.get("/portal/transactions?from=2026-11-30&to=2026-11-01")
    assert resp.status_code == 422
    assert re.search(r'id="range-to-error">The end date is before the start date.<', resp.get_data(as_text=True))


def test_another_accounts_transactions_never_show(world, new_client, login):
    _entry(world.account_a2, "3.00", "sibling-credit", datetime(2026, 11, 5, 12, 0))
    customer = login(new_client(), world.customer_a)
    html = customer.get("/portal/transactions?from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    csv_body = customer.get("/portal/transactions.csv?from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    assert "sibling-credit" not in html and "sibling-credit" not in csv_body


def test_bundle_minutes_used_and_left_this_period(world, new_client, login):
    sheet = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60), ("33", "FR", "0.60", "0", 60, 60)])
    give_plan(world.account_a, sheet, [("GB", 100), ("FR", 0)])
    period = datetime.now(timezone.utc).date().replace(day=1)
    with unscoped():
        db.session.add(BundleUsage(tenant_id=world.a.id, account_id=world.account_a.id, country="GB",
                                   period_start=period, seconds_used=30 * 60 + 15))
        db.session.add(BundleUsage(tenant_id=world.a.id, account_id=world.account_a.id, country="GB",
                                   period_start=date(2020, 1, 1), seconds_used=99 * 60))   # an old period
        db.session.commit()
    html = login(new_client(), world.customer_a).get("/portal/plan").get_data(as_text=True)
    table = re.search(r'<table class="striped" id="bundle-minutes">.*?</table>', html, re.S).group(0)
    assert re.search(r"United Kingdom</td><td class=\"num\">100</td>\s*<td class=\"num\">30 min 15 s</td>\s*"
                     r"<td class=\"num\">69 min 45 s", table)
    assert re.search(r"France</td><td class=\"num\">0</td>\s*<td class=\"num\">—</td><td class=\"num\">—</td>", table)


def test_the_per_minute_report_counts_days_in_the_accounts_time_zone(world, new_client, login):
    sheet = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)])
    give_plan(world.account_a, sheet, [("GB", 0)])
    _set(world.account_a, timezone=NEW_YORK)
    late = add_call(world.account_a, "442071234567", 60, datetime(2026, 12, 1, 3, 0))    # 30 Nov 22:00 local
    with tenant_scope(world.a.id, descendants=False):
        rate_calls([late])
        db.session.commit()
    customer = login(new_client(), world.customer_a)
    nov = customer.get("/portal/per-minute?from=2026-11-30&to=2026-11-30").get_data(as_text=True)
    dec = customer.get("/portal/per-minute?from=2026-12-01&to=2026-12-01").get_data(as_text=True)
    assert "2026-11-30 22:00:00" in nov and "Started (America/New_York)" in nov
    assert "No calls billed per minute in this period." in dec
    rows = list(csv.reader(io.StringIO(
        customer.get("/portal/per-minute.csv?from=2026-11-30&to=2026-11-30").get_data(as_text=True))))
    assert rows[0][0] == "Started (America/New_York)" and rows[1][0] == "2026-11-30 22:00:00"
