"""Number rules: the pure check (no database) and the operations that edit them."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db

from .models import RULE_KINDS, NumberRule

DENIED = "destination_denied"          # refusal cause, next to workers.ami.policy's
_PREFIX = re.compile(r"^[0-9*#+]{1,32}$")


def rule_refusal(rules: list[tuple[str, str]], destination: str) -> str | None:
    """DENIED when a deny prefix matches, or when allow rules exist and none matches."""
    allows = [p for kind, p in rules if kind == "allow"]
    if any(destination.startswith(p) for kind, p in rules if kind == "deny"):
        return DENIED
    if allows and not any(destination.startswith(p) for p in allows):
        return DENIED
    return None


def rules_of(account_id: int) -> list[tuple[str, str]]:
    return [tuple(r) for r in db.session.execute(
        select(NumberRule.kind, NumberRule.prefix).where(NumberRule.account_id == account_id)).all()]


class RuleError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def add_rule(account, kind: str, prefix: str) -> NumberRule:
    """Add an allow/deny prefix to an account (idempotent). Flushes, never commits."""
    prefix = (prefix or "").strip()
    if kind not in RULE_KINDS:
        raise RuleError("kind", "Choose allow, deny or caller ID.")
    if not _PREFIX.match(prefix):
        raise RuleError("prefix", "A prefix is 1 to 32 digits (with an optional leading +).")
    found = db.session.execute(select(NumberRule).where(
        NumberRule.account_id == account.id, NumberRule.kind == kind,
        NumberRule.prefix == prefix)).scalar_one_or_none()
    if found is not None:
        return found
    rule = NumberRule(tenant_id=account.tenant_id, account_id=account.id, kind=kind, prefix=prefix)
    db.session.add(rule)
    db.session.flush()
    return rule


def caller_id_for(account_id: int, extension_id: int | None, presented: str) -> str:
    """The caller ID number a call may present: `presented` when it is one of the account's
    DIDs or a number the reseller approved; else the extension's DID, the account's first DID,
    or the extension's own number (never a number the account does not hold)."""
    from app.numbers.models import Number
    from provisioning.models import Extension

    dids = db.session.execute(select(Number.number, Number.extension_id).where(
        Number.account_id == account_id, Number.status == "assigned").order_by(Number.number)).all()
    approved = {p for kind, p in rules_of(account_id) if kind == "callerid"}
    return pick_caller_id(presented, dids, approved, extension_id, lambda: db.session.execute(
        select(Extension.number).where(Extension.id == extension_id)).scalar_one())


def pick_caller_id(presented: str, dids, approved, extension_id: int | None, extension_number) -> str:
    """caller_id_for's choice on rows already read: `dids` (number, extension id) ordered by
    number, `approved` caller-ID rule prefixes, `extension_number()` the extension's own number."""
    digits = "".join(ch for ch in presented if ch.isdigit())
    if digits and (digits in approved or any(n.lstrip("+") == digits for n, _ in dids)):
        return digits
    own = [n for n, ext in dids if ext == extension_id and extension_id is not None]
    if own or dids:
        return (own or [dids[0][0]])[0].lstrip("+")
    if extension_id is None:
        return ""
    return extension_number()
