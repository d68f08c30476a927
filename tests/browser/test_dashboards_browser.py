"""The dashboards in Chromium: Chart.js (served from the app's static files) draws one chart per
currency from the page's data; the lists and figures sit around it."""
from datetime import datetime, timedelta, timezone

from app.extensions import db
from app.rating.cdr import rate_calls
from tenants.scope import tenant_scope
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture


def test_the_dashboard_draws_revenue_and_margin_per_currency(world, make_account, page, browser_login, shot):
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    make_account(world.a, credit="40", currency="EUR")
    sheet = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)])
    give_plan(world.account_a, sheet, [("GB", 0)])
    calls = [add_call(world.account_a, "442071234567", 60 * (n % 4 + 1), now - timedelta(days=n, minutes=1))
             for n in range(0, 20)]
    with tenant_scope(world.a.id, descendants=False):
        rate_calls(calls)
        db.session.commit()
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/")
    page.wait_for_function("() => window.Chart && document.querySelectorAll('canvas[data-chart-index]').length === 1"
                           " && [...document.querySelectorAll('canvas[data-chart-index]')].every(c => Chart.getChart(c))")
    drawn = page.evaluate("Chart.getChart(document.querySelector('canvas[data-chart-index=\"0\"]')).data.datasets"
                          ".map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])")
    assert drawn[0][0] == "Revenue (USD)" and abs(drawn[0][1] - 30.0) < 1e-9    # 50 min at 0.60
    assert [d[0] for d in drawn] == ["Revenue (USD)", "Cost", "Margin"]
    assert "EUR: no charged calls in these 30 days." in page.inner_text("main")
    shot(page, "reseller-dashboard")
    browser_login(page, "admin", world.admin.email)
    page.goto("/admin/")
    page.wait_for_selector("#switch-health")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas[data-chart-index]'))")
    shot(page, "admin-dashboard")
