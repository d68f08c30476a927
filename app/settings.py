"""Platform-wide settings the admin edits: account-number length, PIN length, base extension,
the SIP server phones register to."""
import re

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

DEFAULTS = {
    "account_number_length": "10",
    "pin_length": "6",
    "base_extension": "1000",
    "default_currency": "USD",
    # Asterisk realtime rows written for every extension (provisioning/realtime.py).
    "sip_context": "ringledger-customers",
    "sip_transport": "transport-udp",
    "sip_codecs": "ulaw,alaw,g722",
    # Where customers' phones register (the welcome letter tells them).
    "sip_server": "sip.ringledger.example",
    "sip_port": "5060",
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


# The whole-number settings the platform admin edits on /admin/settings, with their allowed
# range (inclusive). Account numbers and PINs are digits; the base extension seeds a new
# reseller's extension numbering.
INT_RANGES = {
    "account_number_length": (8, 16),
    "pin_length": (4, 12),
    "base_extension": (100, 99_999_999),
    "sip_port": (1, 65_535),
}

# A host name or IPv4 address phones can reach.
HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class SettingError(ValueError):
    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
