"""All pending orders (number requests, user-count changes, activations) across the
reseller's accounts, one list, processed from there."""
from flask import abort, flash, redirect, request, url_for

from app.billing.orders import KINDS, ORDER_STATUSES, Order, orders_list, pending_count, process_order
from app.conflicts import FieldError
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm
from portals.reseller import bp
from tenants import get_or_404

# The navigation shows how many orders wait (one scoped count, on reseller pages only).
bp.add_app_template_global(pending_count, "pending_orders_count")


@bp.get("/orders")
def orders():
    status = request.args.get("status", "pending")
    kind = request.args.get("kind", "")
    notices = []
    if status not in ORDER_STATUSES:
        notices.append("Unknown status ignored; showing pending orders.")
        status = "pending"
    if kind and kind not in KINDS:
        notices.append("Unknown kind ignored; showing every kind.")
        kind = ""
    return render("reseller/orders.html", rows=orders_list(status=status, kind=kind), status_filter=status,
                  kind=kind, kinds=KINDS, statuses=ORDER_STATUSES, notices=notices,
                  action_form=ActionForm(formdata=None), title="Orders")


@bp.post("/orders/<int:order_id>/process")
def order_process(order_id):
    order = get_or_404(Order, order_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    try:
        process_order(order)
    except FieldError as e:
        flash(e.message, "error")
    else:
        db.session.commit()
        flash(f"Order “{order.description}” marked as processed.", "success")
    return redirect(url_for("reseller.orders", **{k: v for k, v in request.args.items() if k in ("status", "kind")}),
                    code=303)
