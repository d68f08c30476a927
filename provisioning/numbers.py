"""Random, unique, never-sequential account numbers and calling-card PINs."""
import secrets

from sqlalchemy import select

from app.accounts import Account
from app.extensions import db


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
