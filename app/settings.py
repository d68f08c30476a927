"""Platform-wide settings the admin edits: account-number length, PIN length, base extension."""
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

DEFAULTS = {
    "account_number_length": "10",
    "pin_length": "6",
    "base_extension": "1000",
    "default_currency": "USD",
}


class PlatformSetting(db.Model):
    __tablename__ = "platform_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


def get_setting(key: str) -> str:
    value = db.session.execute(
        select(PlatformSetting.value).where(PlatformSetting.key == key)
    ).scalar_one_or_none()
    return value if value is not None else DEFAULTS[key]


def get_int(key: str) -> int:
    return int(get_setting(key))


def set_setting(key: str, value) -> None:
    if key not in DEFAULTS:
        raise KeyError(key)
    row = db.session.execute(select(PlatformSetting).where(PlatformSetting.key == key)).scalar_one_or_none()
    if row is None:
        db.session.add(PlatformSetting(key=key, value=str(value)))
    else:
        row.value = str(value)
