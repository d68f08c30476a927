"""Dashboards (issue 20, point 7): money held and owed per currency, calls today with ASR and
ACD, revenue/cost/margin of the last 30 days per currency (Chart.js data), low-balance and
suspended accounts, pending orders; the platform admin's across resellers with switch health."""
import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import update

from app.accounts.models import Account
from app.billing.orders import Order
from app.calls.servers import AsteriskServer
from app.extensions import db
from app.jobs import redis_connection
from app.rating.cdr import rate_calls
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture


def _set(account, **values):
    with unscoped():
        db.session.execute(update(Account).where(Account.id == account.id).values(**values))
        db.session.commit()


def _charts(html):
    return json.loads(re.search(r'<script type="application/json" id="dashboard-charts">(.*?)</script>', html, re.S).group(1))


def test_the_resellers_dashboard(world, make_account, new_client, login):
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    eur = make_account(world.a, credit="40", currency="EUR")
    _set(world.account_a2, billing_type="postpaid", credit_limit=Decimal("50"), balance=Decimal("-12.50"))
    _set(world.account_a, low_balance_threshold=Decimal("20"))                  # 10.00 < 20.00
    _set(world.account_a_sub, status="suspended", status_reason="unpaid recurring charges")
    sheet = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)])
    give_plan(world.account_a, sheet, [("GB", 0)])
    calls = [add_call(world.account_a, "442071234567", 90, now - timedelta(minutes=5)),
             add_call(world.account_a, "442071234567", 30, now - timedelta(minutes=4)),
             add_call(world.account_a, "442071234567", 0, now - timedelta(minutes=3))]
    with tenant_scope(world.a.id, descendants=False):
        rate_calls(calls)
        db.session.commit()
    with unscoped():
        db.session.add(Order(tenant_id=world.a.id, account_id=world.account_a.id, kind="number", description="FR"))
        db.session.commit()
    html = login(new_client(), world.owner_a).get("/reseller/").get_data(as_text=True)
    money = dict(re.findall(r"Balances held in (\w{3})</small><div class=\"figure\">([^<]+)</div>", html))
    assert money == {"USD": "$15.20", "EUR": "€40.00"}   # 10 - 1.80 of calls + 7 in USD; never added to EUR
    assert "owed $12.50" in html
    today = re.search(r'<section class="stats" id="calls-today">.*?</section>', html, re.S).group(0)
    assert re.search(r"Calls today \(UTC\)</small><div class=\"figure\">3</div>\s*<small>2 answered", today)
    assert "66.7 %" in today and "1:00" in today                 # ASR 2/3, ACD (90+30)/2 s
    assert re.search(r"Pending orders</small><div class=\"figure\">1</div>", today)
    charts = _charts(html)
    assert [c["currency"] for c in charts] == ["USD", "EUR"]
    assert len(charts[0]["labels"]) == 30 and charts[0]["revenue"][-1] == 1.8   # 2 min + 1 min at 0.60
    low = re.search(r'<article id="low-balance">.*?</article>', html, re.S).group(0)
    assert world.account_a.account_number in low and world.account_a2.account_number not in low
    suspended = re.search(r'<article id="suspended">.*?</article>', html, re.S).group(0)
    assert world.account_a_sub.account_number in suspended and "unpaid recurring charges" in suspended
    assert eur.account_number not in low


def test_a_sub_reseller_sees_only_its_subtree(world, new_client, login):
    _set(world.account_a, status="suspended", status_reason="fraud check")
    html = login(new_client(), world.owner_a_sub).get("/reseller/").get_data(as_text=True)
    assert world.account_a.account_number not in html and "fraud check" not in html
    assert re.findall(r"Balances held in (\w{3})</small><div class=\"figure\">([^<]+)</div>", html) == [("USD", "$7.00")]


def test_the_platform_dashboard_adds_switch_health(app, world, new_client, login):
    with unscoped():
        db.session.add_all([AsteriskServer(name="pbx-lon", host="10.0.0.5", username="u", secret="s"),
                            AsteriskServer(name="pbx-par", host="10.0.0.6", username="u", secret="s",
                                           last_error="login refused", last_error_at=datetime(2026, 12, 4, 6))])
        db.session.commit()
    redis_connection(app).set("inuse:pbx-lon:alive", 1, ex=60)
    html = login(new_client(), world.admin).get("/admin/").get_data(as_text=True)
    health = re.search(r'<article id="switch-health">.*?</article>', html, re.S).group(0)
    assert re.search(r"pbx-lon.*?watching", health, re.S) and re.search(r"pbx-par.*?no watcher.*?login refused", health, re.S)
    money = dict(re.findall(r"Balances held in (\w{3})</small><div class=\"figure\">([^<]+)</div>", html))
    assert money == {"USD": "$42.00"}                         # every reseller's accounts: 10 + 5 + 7 + 20
