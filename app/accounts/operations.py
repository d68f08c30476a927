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
    account = Account(
        tenant_id=tenant_id, name=name, email=email.strip().lower(), billing_type=billing_type,
        currency=currency, credit_limit=credit_limit,
        account_number=new_account_number(get_int("account_number_length")),
        pin=new_pin(get_int("pin_length")) if with_pin else None, **fields,
    )
    db.session.add(account)
    db.session.flush()
    if initial_credit:
        ledger.post(account.id, initial_credit, "credit", f"account:{account.id}:initial-credit",
                    description="Initial credit")
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
        has_entries = db.session.execute(
            select(LedgerEntry.id).where(LedgerEntry.account_id == account.id).limit(1)
        ).first()
        if has_entries:
            raise FieldError("currency", "The currency cannot change once the account has transactions.")
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


def set_account_status(account: Account, action: str, *, version=None, reason: str = "") -> str:
    """Enable, disable or suspend at once (the AMI policy reads the status on every new call).

    `reason` is kept with a suspension the billing cycle makes ("unpaid recurring charges"):
    the cycle lifts only a suspension that carries its own reason. Any manual change clears it."""
    from app.conflicts import FieldError

    if action not in STATUS_ACTIONS:
        raise FieldError(None, "Choose enable, disable or suspend.")
    if account.status == "closed":
        raise FieldError(None, "This account is closed; it cannot be reopened.")
    if version is not None:
        check_version(account, version)
    new = STATUS_ACTIONS[action]
    reason = (reason or "")[:80] if new == "suspended" else ""
    if account.status == new:
        if account.status_reason and not reason:
            account.status_reason = ""     # a manual suspension replaces the cycle's
            flush_versioned()
        return new
    old, account.status, account.status_reason = account.status, new, reason
    flush_versioned()
    details = {"old": old, "new": new}
    if reason:
        details["reason"] = reason
    audit.record({"enable": "account.enabled", "disable": "account.disabled", "suspend": "account.suspended"}[action],
                 account, **details)
    live.announce(account.account_number)   # the watchers hang up its live calls (or admit again)
    return new


ADJUST_ACTIONS = ("credit", "debit", "reset")


def adjust_balance(account: Account, action: str, amount: Decimal, reason: str, *, nonce: str,
                   created_by_id: int | None = None):
    """Credit, debit, or reset the balance to a value (posting the difference), with a reason.

    `nonce` comes from the form, so a double-submitted form posts once (ledger key).
    A reset locks the account row, so the difference is computed from the latest balance.
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
    if action != "reset" and amount <= 0:
        raise FieldError("amount", "Enter an amount above zero.")
    key = f"account:{account.id}:adjust:{(nonce or '')[:64]}"
    if action == "credit":
        return ledger.post(account.id, amount, "credit", key, description=f"Credit: {reason}"[:255],
                           created_by_id=created_by_id)
    if action == "debit":
        return ledger.post(account.id, -amount, "adjustment", key, description=f"Debit: {reason}"[:255],
                           created_by_id=created_by_id)
    current = db.session.execute(
        select(Account.balance).where(Account.id == account.id).with_for_update()
    ).scalar_one()
    diff = amount - current
    if diff == 0:
        raise FieldError("amount", f"The balance is already {money.format_money(amount, account.currency)}.")
    return ledger.post(account.id, diff, "adjustment", key,
                       description=f"Balance reset to {money.format_money(amount, account.currency)}: {reason}"[:255],
                       created_by_id=created_by_id)


def account_logins(account_id: int):
    from sqlalchemy import select

    from app.logins.models import User

    return list(db.session.execute(
        select(User).where(User.account_id == account_id, User.role == "account_admin").order_by(User.id)
    ).scalars())


def close_account(account: Account, *, calls_in_progress: int = 0) -> int:
    """Delete = close: refused with a balance or calls in progress. Numbers go back to spare,
    extensions leave Asterisk, logins are disabled; the records stay for invoices."""
    from app import money
    from app.conflicts import FieldError
    from app.numbers import operations as dids
    from provisioning import extensions

    if account.status == "closed":
        raise FieldError(None, "This account is already closed.")
    if account.balance != 0:
        raise FieldError(None, f"The balance is {money.format_money(account.balance, account.currency)}: "
                               "refund or adjust it to zero before deleting the account.")
    if calls_in_progress:
        raise FieldError(None, f"{calls_in_progress} call(s) in progress: wait for them to end, or suspend "
                               "the account first.")
    released = dids.release_all(account)
    extensions.deactivate_all(account)
    for user in account_logins(account.id):
        user.active = False
    old, account.status = account.status, "closed"
    flush_versioned()
    audit.record("account.closed", account, old=old, numbers_released=released)
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
