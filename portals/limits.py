"""The limits view (seed 002), in the reseller and admin portals: every account in scope with its
own channel and CPS limits, its IP trunks, their addresses and limits; searchable by account or
trunk name, account number and IP address (contains). GET /<portal>/limits?q=…
"""
from flask import request
from sqlalchemy import func, or_, select

from app.accounts.models import Account
from app.extensions import db
from app.web import render
from provisioning.trunks import CustomerTrunk
from tenants.models import Tenant

PAGE_ROWS = 200


def rows(query: str, limit: int = PAGE_ROWS):
    """[(account, reseller name, [trunks])] of the scope, by account name; at most `limit` accounts."""
    q = (select(Account, Tenant.name).join(Tenant, Tenant.id == Account.tenant_id)
         .where(Account.status != "closed"))
    text = query.strip().lower()
    if text:
        like = f"%{text}%"
        trunk_match = select(CustomerTrunk.account_id).where(
            or_(func.lower(CustomerTrunk.name).like(like), func.lower(CustomerTrunk.hosts).like(like)))
        q = q.where(or_(func.lower(Account.name).like(like), Account.account_number.like(like),
                        Account.id.in_(trunk_match)))
    found = db.session.execute(q.order_by(func.lower(Account.name), Account.id).limit(limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    trunks: dict[int, list] = {a.id: [] for a, _ in found}
    if trunks:
        for t in db.session.execute(select(CustomerTrunk).where(CustomerTrunk.account_id.in_(list(trunks)))
                                    .order_by(CustomerTrunk.name)).scalars():
            trunks[t.account_id].append(t)
    return [(a, reseller, trunks[a.id]) for a, reseller in found], more


def register(bp, portal: str) -> None:
    def limits():
        query = (request.args.get("q") or "")[:100]
        found, more = rows(query)
        return render("limits.html", portal=portal, query=query, rows=found, more=more, page_rows=PAGE_ROWS,
                      show_reseller=portal == "admin", title="Limits")

    bp.add_url_rule("/limits", "limits", limits, methods=["GET"])
