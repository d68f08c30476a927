"""Customer portal: the per-minute report (billed calls, minutes, charges, available credit).

GET /portal/per-minute        ?from=YYYY-MM-DD&to=YYYY-MM-DD&page=n
GET /portal/per-minute.csv    the same calls as CSV
"""
from flask import request, url_for

from app.rating import reports
from app.web import render
from portals.charts import daily_bars
from portals.customer import bp
from portals.customer.routes import my_account
from portals.reports import csv_response, date_range


@bp.get("/per-minute")
def per_minute():
    account = my_account()
    rng, errors, shown = date_range(request.args, account.timezone)
    report = reports.per_minute(account, rng, request.args.get("page", 1, type=int) or 1)
    chart = daily_bars([(d, v) for d, v in report.daily], [("Charges", "sell")], account.currency)
    return render("customer/per_minute.html", account=account, report=report, errors=errors, shown=shown, chart=chart,
                  csv_url=url_for("customer.per_minute_csv", **rng.args()),
                  page_url=lambda n: url_for("customer.per_minute", page=n, **rng.args()),
                  title="Per minute", status=422 if errors else 200)


@bp.get("/per-minute.csv")
def per_minute_csv():
    account = my_account()
    rng, errors, _ = date_range(request.args, account.timezone)
    return csv_response(reports.per_minute_csv(account, rng),
                        f"per-minute-{account.account_number}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv")
