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
        raise RuleError("kind", "Choose allow or deny.")
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
