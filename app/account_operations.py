"""Account operations shared by portals and workers. Flush, never commit."""
from decimal import Decimal

from app import audit, ledger
from app.accounts import Account
from app.extensions import db
from app.settings import get_int
from provisioning.numbers import new_account_number, new_pin


def create_account(*, tenant_id: int, name: str, email: str, billing_type: str = "prepaid",
                   currency: str = "USD", initial_credit: Decimal = Decimal("0"),
                   credit_limit: Decimal = Decimal("0"), with_pin: bool = False, **fields) -> Account:
    account = Account(
        tenant_id=tenant_id, name=name, email=email.strip().lower(), billing_type=billing_type,
        currency=currency, credit_limit=credit_limit,
        account_number=new_account_number(get_int("account_number_length")),
        pin=new_pin(get_int("pin_length")) if with_pin else None, **fields,
    )
    db.session.add(account)
    db.session.flush()
    if initial_credit:
        ledger.post(account.id, initial_credit, "credit", f"account:{account.id}:initial-credit",
                    description="Initial credit")
    audit.record("account.created", account, account_number=account.account_number)
    return account
