"""Reseller portal: call reports.

GET /reseller/reports/margin                                 ?from&to: margin by reseller and by
                                                             destination, daily sell/buy chart
GET /reseller/reports/per-minute                             ?account=<number>: find an account
GET /reseller/reports/accounts/<account_id>/per-minute       one account's per-minute report
GET /reseller/reports/accounts/<account_id>/per-minute.csv   the same as CSV
"""
from flask import redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.rating import reports
from app.web import render
from portals.charts import daily_bars
from portals.reports import csv_response, date_range
from portals.reseller import bp
from tenants import Tenant, get_or_404


@bp.get("/reports/margin")
def margin_report():
    rng, errors, shown = date_range(request.args)
    by_reseller = reports.margin_by_reseller(rng)
    by_destination = reports.margin_by_destination(rng)
    currency = db.session.scalar(select(Tenant.currency).where(Tenant.id == current_user.tenant_id)) or "USD"
    chart = daily_bars(reports.margin_daily(rng), [("Sell (charges)", "sell"), ("Buy (cost)", "buy")], currency,
                       title="Daily charges and cost")
    return render("reseller/margin.html", rng=rng, errors=errors, shown=shown, by_reseller=by_reseller,
                  by_destination=by_destination, totals=reports.totals(by_reseller), chart=chart,
                  title="Margin report", status=422 if errors else 200)


@bp.get("/reports/per-minute")
def per_minute_find():
    number = (request.args.get("account") or "").strip()[:20]
    account = None
    if number:
        account = db.session.execute(select(Account).where(Account.account_number == number)).scalar_one_or_none()
        if account is not None:
            return redirect(url_for("reseller.account_per_minute", account_id=account.id,
                                    **{k: v for k, v in request.args.items() if k in ("from", "to")}), code=303)
    return render("reseller/per_minute_find.html", number=number,
                  error="No account with this number." if number else "", title="Per-minute report",
                  status=422 if number else 200)


@bp.get("/reports/accounts/<int:account_id>/per-minute")
def account_per_minute(account_id):
    account = get_or_404(Account, account_id)
    rng, errors, shown = date_range(request.args)
    report = reports.per_minute(account, rng, request.args.get("page", 1, type=int) or 1)
    chart = daily_bars([(d, v) for d, v in report.daily], [("Charges", "sell")], account.currency)
    return render("reseller/per_minute.html", account=account, report=report, errors=errors, shown=shown,
                  chart=chart, csv_url=url_for("reseller.account_per_minute_csv", account_id=account.id, **rng.args()),
                  page_url=lambda n: url_for("reseller.account_per_minute", account_id=account.id, page=n,
                                             **rng.args()),
                  title=f"Per minute · {account.display_name}", status=422 if errors else 200)


@bp.get("/reports/accounts/<int:account_id>/per-minute.csv")
def account_per_minute_csv(account_id):
    account = get_or_404(Account, account_id)
    rng, _, _ = date_range(request.args)
    return csv_response(reports.per_minute_csv(account, rng),
                        f"per-minute-{account.account_number}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv")
