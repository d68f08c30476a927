"""Reseller portal: the account list (search, filters, sort, pages, columns, bulk status).

GET  /reseller/accounts           the list; one template for the page and the htmx swap
POST /reseller/accounts/bulk      activate / deactivate the selected accounts (deactivate: a
                                  reason and the "I confirm" box)
POST /reseller/accounts/columns   remember which columns this login shows
"""
from urllib.parse import urlsplit

from flask import flash, redirect, request, url_for
from flask_login import current_user

from app.accounts import listing as account_list
from app.accounts.details import groups_of
from app.accounts.list_actions import LIST_ACTIONS
from app.accounts.listing import (
    COLUMNS, COLUMNS_PREFERENCE, PAGE_SIZES, STATUS_FILTERS, TERMS_FILTERS, BulkError, ListQuery,
)
from app.extensions import db
from app.logins.preferences import clear_preference, get_preference, set_preference
from app.web import render
from portals.reseller import bp
from tenants.scope import current_scope


def _multi_tenant() -> bool:
    ids = current_scope().tenant_ids
    return ids is None or len(ids) > 1


def _columns() -> list[str]:
    return account_list.visible_columns(get_preference(current_user, COLUMNS_PREFERENCE), _multi_tenant())


def _back_to_list() -> str:
    """Where to return after a POST: the list URL the form came from (same path only)."""
    target = request.form.get("next", "")
    parts = urlsplit(target)
    list_url = url_for("reseller.accounts")
    if parts.scheme or parts.netloc or parts.path != list_url:
        return list_url
    return list_url + (f"?{parts.query}" if parts.query else "")


@bp.get("/accounts")
def accounts():
    lq = ListQuery.from_args(request.args)
    result = account_list.list_accounts(lq)
    return render(
        "reseller/accounts.html", result=result, lq=result.query, columns=_columns(),
        all_columns=COLUMNS, status_filters=STATUS_FILTERS, terms_filters=TERMS_FILTERS,
        page_sizes=PAGE_SIZES, this_url=request.full_path.rstrip("?"),
        groups=groups_of(current_user.tenant_id), list_actions=LIST_ACTIONS,
    )


@bp.post("/accounts/bulk")
def accounts_bulk():
    action = request.form.get("action", "")
    ids = account_list.parse_ids(request.form.getlist("ids"))
    try:
        if action == "deactivate" and ids and not request.form.get("confirm"):
            raise BulkError("Tick “I confirm” to deactivate the selected accounts (and say why).")
        changed = account_list.bulk_set_status(ids, action, request.form.get("reason"))
    except BulkError as e:
        db.session.rollback()
        flash(str(e), "error")
    else:
        db.session.commit()
        verb = "activated" if action == "activate" else "deactivated"
        unchanged = len(ids) - changed
        message = f"{changed} account{'s' if changed != 1 else ''} {verb}."
        if unchanged:  # already in that state, closed, or not found in this reseller's scope
            message += f" {unchanged} of the selected {'was' if unchanged == 1 else 'were'} not changed."
        flash(message, "success" if changed else "info")
    return redirect(_back_to_list(), code=303)


@bp.post("/accounts/columns")
def accounts_columns():
    if request.form.get("reset"):
        clear_preference(current_user, COLUMNS_PREFERENCE)
        flash("Columns reset to the default.", "success")
    else:
        chosen = [c for c in request.form.getlist("columns") if c in account_list.COLUMN_KEYS]
        set_preference(current_user, COLUMNS_PREFERENCE,
                       account_list.visible_columns(chosen, _multi_tenant()))
        flash("Columns saved for your login.", "success")
    db.session.commit()
    return redirect(_back_to_list(), code=303)


# --- more actions (seed 002): confirm, then apply ---------------------------------------------
def _confirm_page(action, ids, *, errors=None, values=None, status=200):
    import uuid

    from app.accounts.list_actions import LIST_ACTIONS, selected_accounts
    from app.accounts.operations import adjustment_limit

    accounts = selected_accounts(ids)
    values = dict(values or {})
    values.setdefault("nonce", uuid.uuid4().hex)
    limit = adjustment_limit(current_user.tenant_id) if action == "reset" else None
    return render("reseller/accounts_action.html", action=action, label=LIST_ACTIONS[action][0],
                  needs_reason=LIST_ACTIONS[action][1], needs_amount=LIST_ACTIONS[action][2], accounts=accounts,
                  errors=errors or {}, values=values, limit=limit, next_url=_back_to_list(),
                  title=LIST_ACTIONS[action][0], status=status)


@bp.post("/accounts/bulk/confirm")
def accounts_bulk_confirm():
    from app.accounts.list_actions import LIST_ACTIONS

    action = request.form.get("list_action", "")
    ids = account_list.parse_ids(request.form.getlist("ids"))
    try:
        if action not in LIST_ACTIONS:
            raise BulkError("Choose an action in the list.")
        if action == "template" and len(ids) != 1:
            raise BulkError("Save as template takes one account: select exactly one.")
        return _confirm_page(action, ids)
    except BulkError as e:
        flash(str(e), "error")
        return redirect(_back_to_list(), code=303)


@bp.post("/accounts/bulk/apply")
def accounts_bulk_apply():
    from app import money
    from app.accounts.list_actions import LIST_ACTIONS, apply_list_action
    from app.conflicts import FieldError
    from portals.reseller.account_page import calls_in_progress

    action = request.form.get("list_action", "")
    ids = account_list.parse_ids(request.form.getlist("ids"))
    values = {k: request.form.get(k, "") for k in ("reason", "amount", "template_name", "nonce", "confirm_large")}
    if action not in LIST_ACTIONS:
        flash("Choose an action in the list.", "error")
        return redirect(_back_to_list(), code=303)
    try:
        if not request.form.get("confirm"):
            raise FieldError("confirm", "Tick the box to confirm.")
        amount = None
        if LIST_ACTIONS[action][2]:
            try:
                amount = money.parse_amount(values["amount"], allow_negative=True, max_places=money.MONEY_SCALE)
            except money.MoneyError as e:
                raise FieldError("amount", str(e)) from None
        result = apply_list_action(action, ids, nonce=values["nonce"], reason=values["reason"], amount=amount,
                                   template_name=values["template_name"], created_by_id=current_user.id,
                                   confirm_large=bool(values["confirm_large"]), calls_in_progress=calls_in_progress)
    except FieldError as e:
        db.session.rollback()
        return _confirm_page(action, ids, errors={e.field or "confirm": e.message}, values=values, status=422)
    except BulkError as e:
        db.session.rollback()
        flash(str(e), "error")
        return redirect(_back_to_list(), code=303)
    db.session.commit()
    label = LIST_ACTIONS[action][0]
    message = f"{label}: {len(result.done)} account{'s' if len(result.done) != 1 else ''} done."
    if result.skipped:
        message += " Not done: " + "; ".join(f"{n} ({why})" for n, why in result.skipped[:10])
        message += "…" if len(result.skipped) > 10 else "."
    flash(message, "success" if result.done else "info")
    return redirect(_back_to_list(), code=303)
