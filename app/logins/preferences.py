"""Small per-login preferences (which list columns to show, ...), one JSON value per key.

Keyed by login + key, so one reseller's staff member hiding a column never changes what a
colleague sees. The row also carries `tenant_id` like every tenant-owned table.
"""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from tenants.mixins import TenantOwned
from tenants.models import utcnow


class UserPreference(TenantOwned, db.Model):
    __tablename__ = "user_preferences"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(60))
    value: Mapped[dict | list | str | int | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def get_preference(user, key: str, default=None):
    value = db.session.execute(
        select(UserPreference.value).where(UserPreference.user_id == user.id, UserPreference.key == key)
    ).scalar_one_or_none()
    return default if value is None else value


def set_preference(user, key: str, value) -> None:
    """Store (or replace) one preference of `user`. Flushes, never commits."""
    row = db.session.execute(
        select(UserPreference).where(UserPreference.user_id == user.id, UserPreference.key == key)
    ).scalar_one_or_none()
    if row is not None:
        row.value = value
        db.session.flush()
        return
    try:
        with db.session.begin_nested():  # a double-click may race us to the insert
            db.session.add(UserPreference(tenant_id=user.tenant_id, user_id=user.id, key=key, value=value))
    except IntegrityError:
        row = db.session.execute(
            select(UserPreference).where(UserPreference.user_id == user.id, UserPreference.key == key)
        ).scalar_one()
        row.value = value
        db.session.flush()


def clear_preference(user, key: str) -> None:
    db.session.execute(
        delete(UserPreference).where(UserPreference.user_id == user.id, UserPreference.key == key)
        .execution_options(synchronize_session=False)
    )
