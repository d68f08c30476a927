"""Customer portal (account administrators and the account's other logins): their one account."""
from flask import request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts.models import Account
from app.accounts.transactions import transactions as transactions_of, transactions_csv as transactions_csv_of
from app.extensions import db
from app.ledger import LedgerEntry
from app.settings import get_setting
from app.web import render
from portals.customer import bp
from portals.reports import csv_response, date_range


def my_account() -> Account:
    # The scope already limits Account to this login's account; the id makes it explicit.
    return db.session.execute(select(Account).where(Account.id == current_user.account_id)).scalar_one()


@bp.get("/", endpoint="dashboard")
def dashboard():
    account = my_account()
    recent = db.session.execute(
        select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(5)
    ).scalars().all()
    from app.billing.cycle import owed_charges

    return render("customer/dashboard.html", account=account, entries=recent, owed=owed_charges(account.id))


@bp.get("/account")
def account_tab():
    """Who the account is and where its phones register (read-only: the reseller edits it)."""
    from provisioning.extensions import active_extensions

    account = my_account()
    return render("customer/account.html", account=account, extensions=active_extensions(account.id),
                  sip_server=get_setting("sip_server"), sip_port=get_setting("sip_port"), title="Account")


@bp.get("/transactions")
def transactions():
    account = my_account()
    rng, errors, shown = date_range(request.args, account.timezone)
    report = transactions_of(account.id, rng, request.args.get("page", 1, type=int) or 1)
    return render("customer/transactions.html", account=account, report=report, entries=report.rows,
                  errors=errors, shown=shown, csv_url=url_for("customer.transactions_csv", **rng.args()),
                  page_url=lambda n: url_for("customer.transactions", page=n, **rng.args()),
                  title="Transactions", status=422 if errors else 200)


@bp.get("/transactions.csv")
def transactions_csv():
    account = my_account()
    rng, _, _ = date_range(request.args, account.timezone)
    return csv_response(transactions_csv_of(account.id, account.currency, rng),
                        f"transactions-{account.account_number}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv")
