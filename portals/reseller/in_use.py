"""Live calls on the accounts list and the account page: fresh counts by polling, and a
recount that asks the AMI watchers to count again from the switches' own channel lists."""
from flask import flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app import audit
from app.accounts.models import Account
from app.calls import live
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm
from portals.reseller import bp

MAX_POLLED = 200     # a list page shows at most this many accounts


@bp.get("/accounts/in-use")
def accounts_in_use():
    try:
        ids = [int(i) for i in request.args.get("ids", "").split(",") if i.strip()][:MAX_POLLED]
    except ValueError:
        return "ids must be account ids separated by commas", 400
    accounts = db.session.execute(select(Account).where(Account.id.in_(ids))).scalars().all() if ids else []
    return render("reseller/_in_use_poll.html", accounts=accounts)


@bp.post("/in-use/recount")
def in_use_recount():
    if ActionForm().validate_on_submit():
        live.request_recount()
        audit.record("calls.recount_requested", None, tenant_id=current_user.tenant_id)
        db.session.commit()
        flash("Asked the switches for their live calls: the counts follow in a moment.", "success")
    else:
        flash("The form expired; reload the page and try again.", "error")
    target = request.args.get("next", "")
    return redirect(target if target.startswith("/reseller/") else url_for("reseller.accounts"), code=303)
