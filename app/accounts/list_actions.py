"""Actions on one or many accounts from the accounts list (seed 002): reset the balance (with a
reason), close, send the welcome letter, send the low-balance alert, save as a template. Each
goes through the same operation as the account page (same checks, same history entry); the list
asks for a confirmation first (portals/reseller/accounts_list.py). Idempotent: a confirmation
carries a nonce, and every effect is keyed by it (a ledger key per account for a reset, a letter
key per account for letters), so the same confirmation posted twice changes nothing more; a
closed account is skipped. Flushes only; the caller commits.
"""
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select

from app import audit
from app.accounts.listing import MAX_BULK_IDS, BulkError
from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db

# action -> (label, needs a reason, needs an amount)
LIST_ACTIONS = {
    "reset": ("Reset the balance", True, True),
    "close": ("Close (delete)", True, False),
    "welcome": ("Send the welcome letter", False, False),
    "low_balance": ("Send the low-balance alert", False, False),
    "template": ("Save as template", False, False),
}


@dataclass
class ActionResult:
    done: list[str] = field(default_factory=list)            # account numbers changed or sent to
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (account number, why)


def selected_accounts(ids: list[int]) -> list[Account]:
    if not ids:
        raise BulkError("Select at least one account.")
    if len(ids) > MAX_BULK_IDS:
        raise BulkError(f"Select at most {MAX_BULK_IDS} accounts at a time.")
    return db.session.execute(select(Account).where(Account.id.in_(ids)).order_by(Account.id)).scalars().all()


def _letter(account: Account, kind: str, nonce: str):
    """Queue the letter once per confirmation (the outbox row's unique key)."""
    from app.notifications.models import Notification
    from app.notifications.outbox import low_balance_alert, welcome_letter

    key = f"list:{nonce[:64]}:{kind}:{account.id}"
    if db.session.execute(select(Notification.id).where(Notification.tenant_id == account.tenant_id,
                                                        Notification.dedupe_key == key)).first():
        return False
    n = welcome_letter(account) if kind == "welcome" else low_balance_alert(account)
    n.dedupe_key = key
    db.session.flush()
    return True


def apply_list_action(action: str, ids: list[int], *, nonce: str, reason: str = "", amount: Decimal | None = None,
                      template_name: str = "", created_by_id: int | None = None,
                      confirm_large: bool = False, calls_in_progress=lambda number: 0) -> ActionResult:
    from app.accounts.operations import LargeAdjustment, adjust_balance, close_account

    if action not in LIST_ACTIONS:
        raise BulkError("Choose an action.")
    if not (nonce or "").strip():
        raise BulkError("The confirmation expired; choose the action again.")
    accounts = selected_accounts(ids)
    reason = " ".join((reason or "").split())[:200]
    if LIST_ACTIONS[action][1] and not reason:
        raise FieldError("reason", "Say why: the reason is kept in each account's history.")
    if action == "template" and len(accounts) != 1:
        raise BulkError("Save as template takes one account: select exactly one.")
    if action == "template" and not (template_name or "").strip():
        raise FieldError("template_name", "Give the template a name.")
    if action == "reset" and amount is None:
        raise FieldError("amount", "Enter the balance to reset to.")
    result = ActionResult()
    for account in accounts:
        if account.status == "closed":
            result.skipped.append((account.account_number, "closed"))
            continue
        try:
            with db.session.begin_nested():
                if action == "reset":
                    posted = adjust_balance(account, "reset", amount, reason, nonce=f"list-{nonce}",
                                            created_by_id=created_by_id, confirm_large=confirm_large)
                    if not posted.created:
                        result.skipped.append((account.account_number, "already done"))
                        continue
                elif action == "close":
                    close_account(account, calls_in_progress=calls_in_progress(account.account_number) or 0,
                                  reason=reason)
                elif action in ("welcome", "low_balance"):
                    if not _letter(account, action, nonce):
                        result.skipped.append((account.account_number, "already sent"))
                        continue
                else:
                    _save_template(account, template_name)
        except (FieldError, LargeAdjustment) as e:
            result.skipped.append((account.account_number, _why(e)))
            continue
        result.done.append(account.account_number)
    if result.done:
        audit.record("accounts.list_action", None, tenant_id=accounts[0].tenant_id if accounts else None,
                     list_action=action, accounts=result.done[:50], count=len(result.done), reason=reason or None)
    return result


def _why(e) -> str:
    from app.accounts.operations import LargeAdjustment

    if isinstance(e, LargeAdjustment):
        return "above the adjustment limit: tick the second confirmation"
    return getattr(e, "message", None) or str(e)


def _save_template(account: Account, name: str) -> None:
    from app.billing import plans
    from app.billing.account_templates import save_template, values_from_account

    plan = plans.plan_of(account.id)
    save_template(account.tenant_id, name, values_from_account(account, plan, plans.countries_of(plan)))
