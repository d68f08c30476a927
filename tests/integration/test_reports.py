"""Reports: per-minute (customer portal and reseller, with CSV) and margin (sell vs buy, chart)."""
import re
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.rating.cdr import rate_calls
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture

UK, FR = "442071234567", "33142345678"
MAY = "from=2025-05-01&to=2025-05-31"


def at(day, hour=12):
    return datetime(2025, 5, day, hour, 0, 0)


@pytest.fixture
def calls(world):
    """Reseller A sells GB at 0.60/min (60/60) with 1 free minute; its sub-reseller at 1.20/min.
    The sub-reseller buys at A's wholesale sheet (0.30/min); A has no buy sheet."""
    w = world
    retail = make_sheet(w.a, [("44", "GB", "0.60", "0", 60, 60), ("33", "FR", "0.60", "0", 60, 60)], name="Retail")
    wholesale = make_sheet(w.a, [("44", "GB", "0.30", "0", 60, 60)], name="Wholesale")
    sub_retail = make_sheet(w.a_sub, [("44", "GB", "1.20", "0", 60, 60)], name="Sub retail")
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == w.a_sub.id)).scalar_one().buy_rate_sheet_id = wholesale
        db.session.commit()
    give_plan(w.account_a, retail, [("GB", 1)])
    give_plan(w.account_a2, retail, [("GB", 0)])
    give_plan(w.account_a_sub, sub_retail, [("GB", 0)])
    ids = {
        "bundle": add_call(w.account_a, UK, 30, at(2)),              # inside the free minute
        "crossing": add_call(w.account_a, UK, 90, at(3)),            # 30 s of bundle left, 60 s billed: 0.60
        "billed": add_call(w.account_a, UK, 61, at(3, 15)),          # 120 s: 1.20
        "closed": add_call(w.account_a, FR, 60, at(4)),              # FR not opened: error, not billed
        "unanswered": add_call(w.account_a, UK, 0, at(4)),
        "april": add_call(w.account_a, UK, 60, datetime(2025, 4, 30, 23, 59)),   # April's bundle: free
        "sibling": add_call(w.account_a2, UK, 30, at(5)),            # 0.60, another account
        "sub": add_call(w.account_a_sub, UK, 100, at(5)),            # 2.40 sell, 0.60 buy
    }
    for tenant in (w.a, w.a_sub):
        with tenant_scope(tenant.id, descendants=False):
            rate_calls(list(ids.values()))
            db.session.commit()
    return ids


def test_the_customer_sees_billed_calls_with_minutes_charges_and_available_credit(world, calls, new_client, login):
    client = login(new_client(), world.customer_a)
    page = client.get(f"/portal/per-minute?{MAY}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # billed: the crossing call and the ordinary one; not the bundle call, the error, April, the sibling
    assert html.count("<td>442071234567</td>") == 2
    figures = re.findall(r'<div class="figure">([^<]+)</div>', html)
    # 2 calls, 3 billed minutes (60 s after the bundle + 120 s), 1.80 charged; credit 10 - 1.80
    assert figures == ["2", "3.00", "$1.80", "$8.20"]
    assert "(+30 s bundle)" in html                                # the crossing call's bundle part
    assert '<svg class="chart"' in html and "2025-05-03 Charges: $1.80" in html


def test_the_per_minute_csv_holds_the_same_calls(world, calls, new_client, login):
    client = login(new_client(), world.customer_a)
    resp = client.get(f"/portal/per-minute.csv?{MAY}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    lines = resp.get_data(as_text=True).splitlines()
    assert lines[0] == "Started (UTC),Destination,Country,Duration s,Billed s,Bundle s,Charge,Currency"
    assert lines[1:] == ["2025-05-03 12:00:00,442071234567,GB,90,60,30,0.6000,USD",
                         "2025-05-03 15:00:00,442071234567,GB,61,120,0,1.2000,USD"]


def test_a_bad_date_is_reported_next_to_the_field(world, calls, new_client, login):
    client = login(new_client(), world.customer_a)
    resp = client.get("/portal/per-minute?from=2025-13-01&to=2025-05-31")
    assert resp.status_code == 422
    assert "“2025-13-01” is not a date" in resp.get_data(as_text=True)
    resp = client.get("/portal/per-minute?from=2025-05-31&to=2025-05-01")
    assert resp.status_code == 422 and "The end date is before the start date." in resp.get_data(as_text=True)
    assert client.get("/portal/per-minute.csv?from=nonsense").status_code == 200      # this month, never a 500


def test_the_reseller_sees_the_same_report_per_account_and_not_another_resellers(world, calls, new_client, login):
    owner = login(new_client(), world.owner_a)
    page = owner.get(f"/reseller/reports/accounts/{world.account_a.id}/per-minute?{MAY}")
    assert page.status_code == 200
    figures = re.findall(r'<div class="figure">([^<]+)</div>', page.get_data(as_text=True))
    assert figures == ["2", "3.00", "$1.80", "$8.20"]
    csv_lines = owner.get(f"/reseller/reports/accounts/{world.account_a.id}/per-minute.csv?{MAY}").get_data(
        as_text=True).splitlines()
    assert len(csv_lines) == 3
    assert owner.get(f"/reseller/reports/accounts/{world.account_b.id}/per-minute").status_code == 404
    found = owner.get(f"/reseller/reports/per-minute?account={world.account_a.account_number}&from=2025-05-01")
    assert found.status_code == 303 and f"/accounts/{world.account_a.id}/per-minute" in found.headers["Location"]
    assert owner.get(f"/reseller/reports/per-minute?account={world.account_b.account_number}").status_code == 422


def test_the_margin_report_compares_sell_and_buy_by_reseller_and_destination(world, calls, new_client, login):
    owner = login(new_client(), world.owner_a)
    page = owner.get(f"/reseller/reports/margin?{MAY}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)

    def row(label):
        m = re.search(rf"<tr><td>{re.escape(label)}.*?</tr>", html, re.S)
        assert m, label
        return re.findall(r'<td class="num">([^<]*)</td>', m.group(0))

    # A's own accounts: bundle (0), crossing 0.60, billed 1.20, closed FR (error, 0), sibling 0.60 = 2.40 sell
    # over 271 s; no buy sheet: no buy price for any of its 5 answered calls.
    assert row("Reseller A") == ["5", "4.52", "$2.40", "$0.00", "$0.00", "–", "5"]
    # The sub-reseller: 100 s -> 120 s at 1.20 = 2.40 sell; buys at 0.30 -> 0.60; margin 1.80 (75 %)
    assert row("Reseller A North") == ["1", "1.67", "$2.40", "$0.60", "$1.80", "75.0 %", ""]
    assert row("France") == ["1", "1.00", "$0.00", "$0.00", "$0.00", "–", "1"]
    assert "Reseller B" not in html
    assert "Daily charges and cost" in html and "2025-05-05 Buy (cost): $0.60" in html


def test_a_sub_reseller_sees_only_its_own_margin(world, calls, new_client, login):
    sub = login(new_client(), world.owner_a_sub)
    html = sub.get(f"/reseller/reports/margin?{MAY}").get_data(as_text=True)
    assert "Reseller A North" in html and "<tr><td>Reseller A<" not in html


def test_customers_cannot_open_reseller_reports_and_resellers_not_the_customer_report(world, new_client, login):
    customer = login(new_client(), world.customer_a)
    assert customer.get("/reseller/reports/margin").status_code == 403
    owner = login(new_client(), world.owner_a)
    assert owner.get("/portal/per-minute").status_code == 403


def test_reports_without_calls_show_an_empty_period(world, new_client, login):
    client = login(new_client(), world.customer_a)
    html = client.get("/portal/per-minute").get_data(as_text=True)
    assert "No calls billed per minute in this period." in html
    owner = login(new_client(), world.owner_a)
    assert "No answered calls in this period." in owner.get("/reseller/reports/margin").get_data(as_text=True)


def test_the_chart_draws_one_bar_per_day_with_a_value():
    from datetime import date

    from portals.charts import daily_bars

    svg = str(daily_bars([(date(2025, 5, 1), [Decimal("1.5")]), (date(2025, 5, 2), [Decimal("0")]),
                          (date(2025, 5, 3), [Decimal("3")])], [("Charges", "sell")], "USD"))
    assert svg.count("<rect") == 2 and "2025-05-03 Charges: $3.00" in svg
    assert 'aria-label="Daily charges: Charges $4.50"' in svg
