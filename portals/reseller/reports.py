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

from app.accounts.listing import search_clause
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
    totals = reports.totals(by_reseller)
    # One chart per currency (never a sum of two); the reseller's own currency when there are no calls.
    currencies = list(totals) or [db.session.scalar(select(Tenant.currency).where(Tenant.id == current_user.tenant_id))
                                  or "USD"]
    charts = [daily_bars(reports.margin_daily(rng, c), [("Sell (charges)", "sell"), ("Buy (cost)", "buy")], c,
                         title=f"Daily charges and cost in {c}") for c in currencies]
    return render("reseller/margin.html", rng=rng, errors=errors, shown=shown, by_reseller=by_reseller,
                  by_destination=by_destination, totals=totals, charts=charts,
                  title="Margin report", status=422 if errors else 200)


@bp.get("/reports/per-minute")
def per_minute_find():
    """Find the account by its number, or by (part of) its name, company or email, as the
    accounts list searches: one match opens its report, several are listed."""
    typed = (request.args.get("account") or "").strip()[:80]
    matches = []
    if typed:
        matches = db.session.execute(select(Account).where(Account.account_number == typed)).scalars().all() or \
            db.session.execute(select(Account).where(search_clause(typed)).order_by(Account.name).limit(21)).scalars().all()
        if len(matches) == 1:
            return redirect(url_for("reseller.account_per_minute", account_id=matches[0].id,
                                    **{k: v for k, v in request.args.items() if k in ("from", "to")}), code=303)
    error = "No account matches this number or name." if typed and not matches else ""
    return render("reseller/per_minute_find.html", number=typed, matches=matches[:20], more=len(matches) > 20,
                  error=error, title="Per-minute report", status=422 if error else 200)


@bp.get("/reports/accounts/<int:account_id>/per-minute")
def account_per_minute(account_id):
    account = get_or_404(Account, account_id)
    rng, errors, shown = date_range(request.args, account.timezone)
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
    rng, _, _ = date_range(request.args, account.timezone)
    return csv_response(reports.per_minute_csv(account, rng),
                        f"per-minute-{account.account_number}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv")
