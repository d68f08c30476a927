"""Customer portal (account administrators): their one account."""
from flask_login import current_user
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.ledger import LedgerEntry
from app.web import render
from portals.customer import bp


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


@bp.get("/transactions")
def transactions():
    account = my_account()
    entries = db.session.execute(select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(200)).scalars().all()
    return render("customer/transactions.html", account=account, entries=entries)
