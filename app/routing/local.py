"""Calls that stay on the switch: DIDs to their extensions, short numbers within an account."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.numbers.models import Number
from provisioning.models import Extension


def endpoints_of_did(dialled: str) -> tuple[int | None, list[str]]:
    """(account id, SIP endpoints to ring) for a DID: its extension, or every active extension
    of its account when assigned to the account only; (None, []) when unassigned."""
    digits = "".join(ch for ch in dialled if ch.isdigit())
    number = db.session.execute(
        select(Number).where(Number.number == "+" + digits, Number.status == "assigned")).scalar_one_or_none()
    if number is None or number.account_id is None:
        return None, []
    query = select(Extension.sip_username).where(Extension.account_id == number.account_id,
                                                 Extension.active.is_(True))
    if number.extension_id is not None:
        query = query.where(Extension.id == number.extension_id)
    return number.account_id, list(db.session.execute(query.order_by(Extension.number)).scalars())


def sibling_endpoint(account_id: int, short_number: str) -> str | None:
    """The SIP endpoint of the account's own active extension with that short number."""
    return db.session.execute(
        select(Extension.sip_username).where(Extension.account_id == account_id, Extension.active.is_(True),
                                             Extension.number == short_number)).scalar_one_or_none()
