"""Audit log: who did what to which record, from which login (and on whose behalf)."""
from datetime import datetime

from flask import has_request_context, request, session
from flask_login import current_user
from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from tenants.mixins import TenantOwned
from tenants.models import utcnow


class AuditEntry(TenantOwned, db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_email: Mapped[str] = mapped_column(String(254), default="system")
    # The reseller/admin login behind an impersonated customer session, if any.
    impersonator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int | None] = mapped_column()
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(45), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


def record(action: str, obj=None, *, tenant_id: int | None = None, account_id: int | None = None,
           **details) -> AuditEntry:
    """Add an audit entry for `obj` in the current session (the caller commits)."""
    actor_id, actor_email, impersonator_id, ip = None, "system", None, ""
    if has_request_context():
        if current_user and current_user.is_authenticated:
            actor_id, actor_email = current_user.id, current_user.email
        impersonator_id = session.get("impersonator_id")
        ip = (request.remote_addr or "")[:45]
    if type(obj).__name__ == "Tenant":
        tenant_id = tenant_id or obj.id
    if obj is not None:
        tenant_id = tenant_id or getattr(obj, "tenant_id", None)
        if type(obj).__name__ == "Account":
            account_id = account_id or obj.id
        else:
            account_id = account_id or getattr(obj, "account_id", None)
    entry = AuditEntry(
        tenant_id=tenant_id, actor_id=actor_id, actor_email=actor_email,
        impersonator_id=impersonator_id, action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=getattr(obj, "id", None), account_id=account_id,
        details={k: _plain(v) for k, v in details.items()}, ip=ip,
    )
    db.session.add(entry)
    return entry


def _plain(v):
    return v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v)


# What names a record in the log, in this order; an account also shows its number.
_LABEL_ATTRS = ("name", "number", "email", "prefix", "slug")
# The operator's word for a record type, where the class name is not it.
_TYPE_WORDS = {"Tenant": "Reseller", "User": "Login", "ServicePlan": "Plan", "RateSheet": "Rate sheet",
               "AsteriskServer": "Server", "AccountTemplate": "Template", "Extension": "User"}


def record_labels(entries) -> dict[tuple[str, int], str]:
    """{(object_type, object_id): "Account Harbour Cafe (3840636621)"} for the entries' records,
    one query per type (within the reader's scope); a record gone since keeps "Type id"."""
    from collections import defaultdict

    from sqlalchemy import select

    classes = {m.class_.__name__: m.class_ for m in db.Model.registry.mappers}
    wanted: dict[str, set[int]] = defaultdict(set)
    for e in entries:
        if e.object_type in classes and e.object_id is not None:
            wanted[e.object_type].add(e.object_id)
    labels = {}
    for type_, ids in wanted.items():
        cls = classes[type_]
        for obj in db.session.execute(select(cls).where(cls.id.in_(sorted(ids)))).scalars():
            name = next((getattr(obj, a) for a in _LABEL_ATTRS if getattr(obj, a, None)), None)
            number = getattr(obj, "account_number", None)
            word = _TYPE_WORDS.get(type_, type_)
            labels[(type_, obj.id)] = (f"{word} {name}" + (f" ({number})" if number else "")) if name \
                else f"{word} {obj.id}"
    return labels
