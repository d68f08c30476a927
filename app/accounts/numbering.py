"""Random, unique, never-sequential account numbers and calling-card PINs, and the platform
settings that shape them (account-number length, PIN length, base extension)."""
import secrets

from sqlalchemy import select

from app import audit
from app.accounts.models import Account
from app.extensions import db
from app.settings import HOST_RE, INT_RANGES, SettingError, get_int, get_setting, set_setting


def random_digits(length: int) -> str:
    # First digit non-zero so the number keeps its length when typed into a keypad or CSV.
    return str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(length - 1))


def new_account_number(length: int = 10, attempts: int = 20) -> str:
    """A random account number not yet used on the platform (checked across all tenants)."""
    for _ in range(attempts):
        candidate = random_digits(length)
        taken = db.session.execute(
            select(Account.id).where(Account.account_number == candidate).execution_options(all_tenants=True)
        ).first()
        if not taken:
            return candidate
    raise RuntimeError("could not find a free account number; raise the account-number length")


def new_pin(length: int = 6) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(length))


def update_sip_server(host: str) -> dict[str, list[str]]:
    """The host phones register to (welcome letters). Audited; flushes, never commits."""
    host = (host or "").strip().lower()
    if not HOST_RE.match(host):
        raise SettingError("sip_server", "Enter a host name or IP address, e.g. sip.example.net.")
    old = get_setting("sip_server")
    if old == host:
        return {}
    set_setting("sip_server", host)
    db.session.flush()
    audit.record("settings.updated", None, sip_server=[old, host])
    return {"sip_server": [old, host]}


def update_int_settings(values: dict[str, int]) -> dict[str, list[int]]:
    """Validate and store whole-number settings; audit what changed (one entry).

    Returns {key: [old, new]} for the settings that changed. Flushes, never commits.
    """
    for key, value in values.items():
        low, high = INT_RANGES[key]
        if not isinstance(value, int) or not low <= value <= high:
            raise SettingError(key, f"Choose a whole number from {low} to {high}.")
    changes = {}
    for key, value in values.items():
        old = get_int(key)
        if old != value:
            set_setting(key, value)
            changes[key] = [old, value]
    if changes:
        db.session.flush()
        audit.record("settings.updated", None, **changes)
    return changes
