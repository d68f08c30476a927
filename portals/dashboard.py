"""What both dashboards show (the reseller's over its subtree, the platform admin's over every
reseller; the tenant scope decides): money held and owed per currency, calls today with ASR
and ACD, revenue, cost and margin of the last 30 days as one chart per currency, accounts under
their low-balance level, suspended accounts and pending orders."""
import json
from datetime import datetime, time, timedelta, timezone

from markupsafe import Markup

from app.accounts.overview import low_balance_accounts, money_by_currency, suspended_accounts
from app.billing.orders import pending_count
from app.calls.stats import call_figures
from app.rating.reports import DateRange, margin_daily

DAYS = 30


def _chart(currency: str, rng: DateRange) -> dict:
    """Chart.js data for one currency. Floats only for drawing: the table under the chart
    (and every page that stores or adds money) keeps Decimals."""
    days = margin_daily(rng, currency)
    revenue = [sell for _, (sell, _buy) in days]
    cost = [buy for _, (_sell, buy) in days]
    return {
        "currency": currency,
        "labels": [d.strftime("%d %b") for d, _ in days],
        "revenue": [float(v) for v in revenue],
        "cost": [float(v) for v in cost],
        "margin": [float(s - b) for s, b in zip(revenue, cost)],
        "totals": {"revenue": sum(revenue), "cost": sum(cost), "margin": sum(revenue) - sum(cost)},
    }


def overview(now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    midnight = datetime.combine(now.date(), time.min)
    rng = DateRange(now.date() - timedelta(days=DAYS - 1), now.date())
    money = money_by_currency()
    charts = [_chart(m.currency, rng) for m in money]
    low, low_count = low_balance_accounts()
    suspended, suspended_count = suspended_accounts()
    return {
        "money": money, "today": call_figures(midnight, now + timedelta(seconds=1)), "range": rng,
        "charts": charts, "charts_json": Markup(json.dumps([{k: v for k, v in c.items() if k != "totals"}
                                                            for c in charts])),
        "low": low, "low_count": low_count, "suspended": suspended, "suspended_count": suspended_count,
        "pending_orders": pending_count(),
    }
