"""Number rules: allow and deny lists of dialled prefixes per account.

A deny rule always wins; when an account has any allow rule, only destinations matching one
of its allow rules may be called (A2Billing "restricted numbers" semantics).
"""
from sqlalchemy import CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from tenants.mixins import AccountOwned

RULE_KINDS = ("allow", "deny")


class NumberRule(AccountOwned, db.Model):
    __tablename__ = "number_rules"
    __table_args__ = (UniqueConstraint("account_id", "kind", "prefix"),
                      CheckConstraint("kind in ('allow', 'deny')", name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(5))
    prefix: Mapped[str] = mapped_column(String(32))     # digits as dialled after translation
