"""Account operations shared by portals and workers. Flush, never commit."""
from decimal import Decimal

from app import audit, ledger
from app.calls import live
from app.accounts.models import Account
from app.extensions import db
from app.settings import get_int
from app.accounts.numbering import new_account_number, new_pin


def create_account(*, tenant_id: int, name: str, email: str, billing_type: str = "prepaid",
                   currency: str = "USD", initial_credit: Decimal = Decimal("0"),
                   credit_limit: Decimal = Decimal("0"), with_pin: bool = False, **fields) -> Account:
    from app import money
    from app.conflicts import FieldError

    try:
        currency = money.check_currency(currency)
    except money.MoneyError as e:
        raise FieldError("currency", str(e)) from None
    account = Account(
        tenant_id=tenant_id, name=name, email=email.strip().lower(), billing_type=billing_type,
        currency=currency, credit_limit=credit_limit,
        account_number=new_account_number(get_int("account_number_length")),
        pin=new_pin(get_int("pin_length")) if with_pin else None, **fields,
    )
    db.session.add(account)
    db.session.flush()
    if initial_credit:
        from app.invoicing.receipts import on_credit

        key = f"account:{account.id}:initial-credit"
        posted = ledger.post(account.id, initial_credit, "credit", key, description="Initial credit")
        on_credit(account, posted, key, kind="credit", gross=initial_credit, reference="Initial credit")
    audit.record("account.created", account, account_number=account.account_number)
    return account


# --- the account page's operations (reseller portal; bulk actions may reuse them) -------------

STALE_MESSAGE = ("This account was changed by someone else since you opened it; nothing was saved. "
                 "Reload the page to see the current values, then make your change again.")

# Fields the account page edits (balance is never one of them: it changes through the ledger).
EDITABLE = ("name", "email", "first_name", "last_name", "phone", "company", "address", "city", "state",
            "postcode", "country", "timezone", "language", "currency", "billing_type", "credit_limit",
            "max_channels", "cps_limit", "low_balance_threshold", "email_alerts", "play_insufficient_credit",
            "invoice_day", "vat_rate", "vat_number", "expiry_mode", "expiry_date", "expiry_days", "autorefill",
            "initial_balance", "notes")

STATUS_ACTIONS = {"enable": "active", "disable": "disabled", "suspend": "suspended"}


class StaleEdit(ValueError):
    def __init__(self):
        super().__init__(STALE_MESSAGE)


def check_version(account: Account, version) -> None:
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise StaleEdit() from None
    if version != account.version:
        raise StaleEdit()


def flush_versioned() -> None:
    """Flush an Account change; a concurrent change in between becomes StaleEdit."""
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm.exc import StaleDataError

    from app.conflicts import conflict_error

    try:
        db.session.flush()
    except StaleDataError as e:
        raise StaleEdit() from e
    except IntegrityError as e:   # e.g. two edits racing for one login email
        raise conflict_error(e) from e


def update_account(account: Account, *, version, values: dict, extra_changes: dict | None = None) -> dict:
    """Save an edit form: refused (StaleEdit) if the account changed since the form was opened.

    The version always moves on a save (updated_at is touched), so a save that only changed
    the plan still makes older forms stale.
    """
    from app.conflicts import FieldError
    from app.ledger import LedgerEntry
    from app.numbers.operations import refresh_caller_ids
    from sqlalchemy import select
    from tenants.models import utcnow

    check_version(account, version)
    if account.status == "closed":
        raise FieldError(None, "This account is closed; it can no longer be edited.")
    values = {k: v for k, v in values.items() if k in EDITABLE}
    if "email" in values:
        values["email"] = values["email"].strip().lower()
    if values.get("billing_type", account.billing_type) == "prepaid" and values.get("credit_limit"):
        raise FieldError("credit_limit", "A credit limit applies to postpaid accounts only; leave it at 0.")
    if "currency" in values and values["currency"] != account.currency:
        values["currency"] = _new_currency(account, values["currency"])
    if "email" in values and values["email"] != account.email:
        _move_portal_login(account, values["email"])
    changes = {}
    for key, value in values.items():
        old = getattr(account, key)
        if old != value:
            changes[key] = [old, value]
            setattr(account, key, value)
    account.updated_at = utcnow()
    flush_versioned()
    changes.update(extra_changes or {})
    if changes:
        audit.record("account.updated", account, **{k: [str(a), str(b)] if not isinstance(a, (list, dict)) else [a, b]
                                                    for k, (a, b) in changes.items()})
    if {"name", "language"} & changes.keys():
        refresh_caller_ids(account)
    return changes


def _new_currency(account: Account, currency: str) -> str:
    """One currency per account: a new one only before any transaction, from the list, and
    matching the rate sheet of its plan."""
    from sqlalchemy import select

    from app import money
    from app.billing.models import ServicePlan
    from app.conflicts import FieldError
    from app.ledger import LedgerEntry
    from app.rating.models import RateSheet

    try:
        currency = money.check_currency(currency)
    except money.MoneyError as e:
        raise FieldError("currency", str(e)) from None
    has_entries = db.session.execute(
        select(LedgerEntry.id).where(LedgerEntry.account_id == account.id).limit(1)
    ).first()
    if has_entries:
        raise FieldError("currency", "The currency cannot change once the account has transactions.")
    sheet = db.session.execute(
        select(RateSheet.name, RateSheet.currency).join(ServicePlan, ServicePlan.rate_sheet_id == RateSheet.id)
        .where(ServicePlan.account_id == account.id)).first()
    if sheet is not None and sheet.currency != currency:
        raise FieldError("currency", f"The account's rate sheet “{sheet.name}” is in {sheet.currency}: choose a "
                                     f"{currency} rate sheet as well, or keep {sheet.currency}.")
    return currency


def _move_portal_login(account: Account, email: str) -> None:
    """The account's email is its portal login: refuse an email another login holds (as the
    wizard does), and move the account's own login(s) to the new one."""
    from app.conflicts import FieldError
    from app.logins.models import User
    from sqlalchemy import or_, select

    other = db.session.execute(
        select(User.id).where(User.email == email, or_(User.account_id.is_(None), User.account_id != account.id))
        .execution_options(all_tenants=True)).first()
    if other:
        raise FieldError("email", "This email is already the portal login of another account or user; "
                                  "choose another.")
    for login in db.session.execute(select(User).where(User.account_id == account.id,
                                                       User.email == account.email)).scalars():
        login.email = email


# Taking service away (suspend, disable) or closing asks for a reason, kept in the history.
REASON_NEEDED = {"disable", "suspend", "close"}
REASON_MESSAGE = "Say why: the reason is kept in the account's history."


def _reason(action: str, reason) -> str:
    from app.conflicts import FieldError

    reason = " ".join((reason or "").split())[:200]
    if action in REASON_NEEDED and not reason:
        raise FieldError("reason", REASON_MESSAGE)
    return reason


def set_account_status(account: Account, action: str, *, version=None, reason: str | None = None) -> str:
    """Enable, disable or suspend at once (the AMI policy reads the status on every new call).
    Disable and suspend need a reason, kept in the audit entry (the account's history). A
    suspension also keeps it on the account (`status_reason`, shown with the status): the billing
    cycle lifts only a suspension that carries its own reason ("unpaid recurring charges"), so a
    manual suspension, even of an account the cycle suspended, stays until someone lifts it."""
    from app.conflicts import FieldError

    if action not in STATUS_ACTIONS:
        raise FieldError(None, "Choose enable, disable or suspend.")
    if account.status == "closed":
        raise FieldError(None, "This account is closed; it cannot be reopened.")
    reason = _reason(action, reason)
    if version is not None:
        check_version(account, version)
    new = STATUS_ACTIONS[action]
    if new == "active" and account.status == "expired":
        from app.accounts.expiry import expiry_of
        from tenants.models import utcnow

        expires = expiry_of(account, utcnow())
        if expires is not None and expires <= utcnow():
            raise FieldError(None, "This account has expired: change its expiry first, then enable it.")
    kept = reason[:80] if new == "suspended" else ""
    if account.status == new:
        if account.status_reason != kept:
            account.status_reason = kept       # a manual suspension replaces the cycle's
            flush_versioned()
        return new
    old, account.status, account.status_reason = account.status, new, kept
    flush_versioned()
    details = {"old": old, "new": new}
    if reason:
        details["reason"] = reason
    audit.record({"enable": "account.enabled", "disable": "account.disabled", "suspend": "account.suspended"}[action],
                 account, **details)
    live.announce(account.account_number)   # the watchers hang up its live calls (or admit again)
    return new


def suspend_accounts(accounts: list[Account], reason: str) -> None:
    """`set_account_status(account, "suspend", reason=reason)` for many active accounts the
    caller holds locked (a billing run): one UPDATE for all of them (the version moves on, as
    any change does), then an audit entry and a notice to the watchers each, as one by one."""
    from sqlalchemy import update

    from tenants.models import utcnow

    reason = _reason("suspend", reason)
    active = [a for a in accounts if a.status == "active"]
    if not active:
        return
    kept = reason[:80]
    db.session.execute(update(Account).where(Account.id.in_([a.id for a in active]), Account.status == "active")
                       .values(status="suspended", status_reason=kept, version=Account.version + 1,
                               updated_at=utcnow())
                       .execution_options(synchronize_session="evaluate"))
    for account in active:
        audit.record("account.suspended", account, old="active", new="suspended", reason=reason)
        live.announce(account.account_number)


ADJUST_ACTIONS = ("credit", "debit", "reset")


class LargeAdjustment(Exception):
    """An adjustment above the reseller's limit that was not confirmed a second time: nothing
    was written; the page asks again, showing the amount and the limit."""

    def __init__(self, amount: Decimal, limit: Decimal, currency: str, limit_currency: str):
        from app import money

        self.amount, self.currency = amount, currency
        self.limit, self.limit_currency = limit, limit_currency
        super().__init__(f"This changes the balance by {money.format_money(amount, currency)}, more than your "
                         f"limit of {money.format_money(limit, limit_currency)} for one adjustment. Check the "
                         "amount and confirm it once more.")


def adjustment_limit(tenant_id: int) -> tuple[Decimal, str]:
    """(the reseller's adjustment_confirm_limit, its currency). The limit is compared with the
    change in the account's own currency as a number (no exchange rates)."""
    from sqlalchemy import select

    from tenants.models import Tenant

    row = db.session.execute(select(Tenant.adjustment_confirm_limit, Tenant.currency).where(Tenant.id == tenant_id)
                             .execution_options(all_tenants=True)).one_or_none()
    if row is None or row[0] is None:
        return Decimal("1000"), (row[1] if row else "USD")
    return Decimal(row[0]), row[1]


def adjust_balance(account: Account, action: str, amount: Decimal, reason: str, *, nonce: str,
                   created_by_id: int | None = None, confirm_large: bool = False):
    """Credit, debit, or reset the balance to a value (posting the difference), with a reason.

    `nonce` comes from the form, so a double-submitted form posts once (ledger key); the
    second confirmation of a large adjustment carries the same nonce, so posting that twice
    also posts once. A change (for a reset: the difference) above the reseller's
    `adjustment_confirm_limit` raises LargeAdjustment unless `confirm_large`. A reset never
    leaves a prepaid balance below zero. A reset locks the account row, so the difference is
    computed from the latest balance.
    """
    from sqlalchemy import select

    from app import money
    from app.conflicts import FieldError

    reason = (reason or "").strip()
    if action not in ADJUST_ACTIONS:
        raise FieldError("action", "Choose credit, debit or reset.")
    if not reason:
        raise FieldError("reason", "Say why: the reason is kept with the transaction.")
    if account.status == "closed":
        raise FieldError(None, "This account is closed.")
    amount = money.quantize(amount, account.currency)
    try:
        money.check_maximum(amount)
    except money.MoneyError as e:
        raise FieldError("amount", str(e)) from None
    if action != "reset" and amount <= 0:
        raise FieldError("amount", "Enter an amount above zero.")
    if action == "reset" and amount < 0 and account.billing_type == "prepaid":
        raise FieldError("amount", "A prepaid account's balance cannot be reset below zero: it pays before it "
                                   "calls. Reset it to 0 or more (or make the account postpaid first).")
    key = f"account:{account.id}:adjust:{(nonce or '')[:64]}"
    done = db.session.execute(select(ledger.LedgerEntry).where(ledger.LedgerEntry.account_id == account.id,
                                                                ledger.LedgerEntry.idempotency_key == key)
                              ).scalar_one_or_none()
    if done is not None:    # the same form (or its confirmation) sent again: nothing more
        return ledger.Posted(done.id, done.amount, done.balance_after, created=False)
    limit, limit_currency = adjustment_limit(account.tenant_id)

    def confirm(change: Decimal) -> None:
        if abs(change) > limit and not confirm_large:
            raise LargeAdjustment(change, limit, account.currency, limit_currency)

    if action == "credit":
        from app.invoicing.receipts import on_credit

        confirm(amount)
        posted = ledger.post(account.id, amount, "credit", key, description=f"Credit: {reason}"[:255],
                             created_by_id=created_by_id)
        on_credit(account, posted, key, kind="credit", gross=amount, method="credit", reference=reason[:120],
                  created_by_id=created_by_id)     # a prepaid account's receipt (no tax on a credit)
        return posted
    if action == "debit":
        confirm(-amount)
        return ledger.post(account.id, -amount, "adjustment", key, description=f"Debit: {reason}"[:255],
                           created_by_id=created_by_id)
    current = db.session.execute(
        select(Account.balance).where(Account.id == account.id).with_for_update()
    ).scalar_one()
    diff = amount - current
    if diff == 0:
        raise FieldError("amount", f"The balance is already {money.format_money(amount, account.currency)}.")
    confirm(diff)
    # Exact: the balance may keep sub-cent call charges (1.2345), and a reset lands on the amount typed.
    return ledger.post(account.id, diff, "adjustment", key,
                       description=f"Balance reset to {money.format_money(amount, account.currency)}: {reason}"[:255],
                       created_by_id=created_by_id, places=money.MONEY_SCALE)


def account_logins(account_id: int):
    from sqlalchemy import select

    from app.logins.models import User

    return list(db.session.execute(
        select(User).where(User.account_id == account_id, User.role == "account_admin").order_by(User.id)
    ).scalars())


def close_account(account: Account, *, calls_in_progress: int = 0, reason: str | None = None) -> int:
    """Delete = close: refused with a balance or calls in progress. Numbers go back to spare,
    extensions leave Asterisk, logins are disabled; the records stay for invoices. The reason
    (required) is kept in the history."""
    from app import money
    from app.conflicts import FieldError
    from app.numbers import operations as dids
    from provisioning import extensions

    if account.status == "closed":
        raise FieldError(None, "This account is already closed.")
    reason = _reason("close", reason)
    if account.balance != 0:
        raise FieldError(None, f"The balance is {money.format_money_exact(account.balance, account.currency)}: "
                               "refund or adjust it to zero before deleting the account.")
    if calls_in_progress:
        raise FieldError(None, f"{calls_in_progress} call(s) in progress: wait for them to end, or suspend "
                               "the account first.")
    released = dids.release_all(account)
    extensions.deactivate_all(account)
    from app.billing.user_changes import cancel_on_close

    cancel_on_close(account)        # a scheduled user-count decrease has nothing left to apply to
    for user in account_logins(account.id):
        user.active = False
    old, account.status = account.status, "closed"
    flush_versioned()
    audit.record("account.closed", account, old=old, numbers_released=released, reason=reason)
    live.announce(account.account_number)
    return released


def set_portal_password(account: Account, password: str) -> "object":
    """Set the account administrator's password (creating the login from the account email if
    there is none yet); the account's email is told."""
    from app.logins.operations import LoginError, create_login
    from app.conflicts import FieldError
    from app.notifications.outbox import password_changed

    if len(password or "") < 8:
        raise FieldError("password", "Use at least 8 characters.")
    if account.status == "closed":
        raise FieldError(None, "This account is closed.")
    logins = account_logins(account.id)
    if logins:
        user = logins[0]
        user.set_password(password)
        user.failed_logins, user.locked_until = 0, None
        audit.record("login.password_changed", user, account_id=account.id)
    else:
        try:
            user = create_login(tenant_id=account.tenant_id, email=account.email, role="account_admin",
                                name=f"{account.first_name} {account.last_name}".strip() or account.name,
                                password=password, account_id=account.id)
        except LoginError as e:
            raise FieldError("password", f"{e} (the portal login is the account's email)") from e
    password_changed(account, user.email)
    return user


def set_pin(account: Account, enabled: bool) -> None:
    if enabled and not account.pin:
        account.pin = new_pin(get_int("pin_length"))
        audit.record("account.pin_issued", account)
    elif not enabled and account.pin:
        account.pin = None
        audit.record("account.pin_removed", account)
