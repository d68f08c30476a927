"""Domain errors that name a form field, and unique-constraint races turned into them.

Domain operations check what they can first (clear message, nothing written); a concurrent
request can still win the race between that check and our INSERT/UPDATE. The database's
unique constraint then stops the second effect, and `flush_or_conflict()` turns the
IntegrityError into the same clear message. After such an error the transaction is dead:
the caller (the route) must roll back, which also undoes everything else it wrote.
"""
from sqlalchemy.exc import IntegrityError

from app.extensions import db


class FieldError(ValueError):
    """A refusal meant for a form: `field` is the form field to show it next to (or None)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# constraint name (metadata naming convention) -> (field, message)
CONSTRAINT_MESSAGES = {
    "uq_plan_names_tenant_id_name_key": (
        "plan_name", "This plan name is already used by another account of this reseller; plan names are never reused."),
    "uq_service_plans_tenant_id_name": (
        "plan_name", "This plan name is already used by another account of this reseller; plan names are never reused."),
    "uq_users_email": ("email", "This email is already used by another login."),
    "uq_tenants_parent_id_name": ("name", "Another reseller under the same parent already has this name."),
    "uq_tenants_slug": ("slug", "This short name is already taken."),
    "uq_numbers_number": ("number", "This number is already in the inventory."),
    "uq_accounts_account_number": (None, "Two accounts drew the same account number at the same moment; submit again."),
    "uq_extensions_tenant_id_number": (None, "Another change took the same extension numbers at the same moment; submit again."),
    "uq_extensions_sip_username": (None, "Another change took the same SIP usernames at the same moment; submit again."),
    "uq_account_templates_tenant_id_name": ("name", "A template with this name already exists."),
    "uq_taxes_tenant_id_name": ("name", "A tax with this name already exists; names are unique."),
    "uq_account_taxes_account_id_tax_id": (None, "Another change set the same taxes at the same moment; submit again."),
}


def constraint_of(error: IntegrityError) -> str:
    diag = getattr(getattr(error, "orig", None), "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    text = str(getattr(error, "orig", error))
    for known in CONSTRAINT_MESSAGES:
        if known in text:
            return known
    return ""


def conflict_error(error: IntegrityError) -> FieldError:
    field, message = CONSTRAINT_MESSAGES.get(
        constraint_of(error), (None, "Someone else changed the same data at the same moment; nothing was saved. Submit again."))
    return FieldError(field, message)


def flush_or_conflict(session=None) -> None:
    """Flush; a unique-constraint race becomes a FieldError (the caller must roll back)."""
    session = session or db.session
    try:
        session.flush()
    except IntegrityError as e:
        raise conflict_error(e) from e
