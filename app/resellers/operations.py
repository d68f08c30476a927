"""Creating and changing resellers (tenants). Flush, never commit."""
import re

from sqlalchemy import func, select

from app import audit
from app.conflicts import FieldError, flush_or_conflict
from app.extensions import db
from app.money import CALL_PLACES_DEFAULT, CALL_PLACES_MAX, CALL_PLACES_MIN
from tenants.models import Tenant, place_in_tree

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$")


class TenantError(ValueError):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]


def _check_name(name: str, parent_id: int | None, tenant_id: int | None = None) -> None:
    """Reseller names are unique among siblings (whatever the case): two "Acme" under one parent
    could not be told apart in lists and reports. The database's unique (parent, name) backs it."""
    if not name:
        raise TenantError("name", "Enter the reseller's name.")
    q = select(Tenant.id).where(Tenant.parent_id == parent_id, func.lower(Tenant.name) == name.lower())
    if tenant_id is not None:
        q = q.where(Tenant.id != tenant_id)
    if db.session.execute(q.execution_options(all_tenants=True)).first():
        raise TenantError("name", "Another reseller under the same parent already has this name.")


def _currency(code: str) -> str:
    from app import money

    try:
        return money.check_currency(code)
    except money.MoneyError as e:
        raise TenantError("currency", str(e)) from None


def create_tenant(*, name: str, slug: str, parent_id: int, email: str = "",
                  currency: str = "USD", base_extension: int = 1000,
                  call_charge_places: int = CALL_PLACES_DEFAULT) -> Tenant:
    _check_name(name.strip(), parent_id)
    currency = _currency(currency)
    slug = (slug or slugify(name)).strip().lower()
    if not SLUG_RE.match(slug):
        raise TenantError("slug", "Use 3-60 lower-case letters, digits and dashes.")
    if db.session.execute(
        select(Tenant.id).where(Tenant.slug == slug).execution_options(all_tenants=True)
    ).first():
        raise TenantError("slug", "This short name is already taken.")
    parent = db.session.execute(select(Tenant).where(Tenant.id == parent_id)).scalar_one_or_none()
    if parent is None:
        raise TenantError("parent_id", "Choose a parent you manage.")
    tenant = Tenant(name=name.strip(), slug=slug, email=email.strip().lower(), parent_id=parent.id,
                    currency=currency.upper(), base_extension=base_extension, path="/",
                    call_charge_places=_checked_places(call_charge_places))
    db.session.add(tenant)
    _flush()
    place_in_tree(tenant, parent)
    _flush()
    # Filed under the parent: the new tenant is not in the creator's scope until next request.
    audit.record("reseller.created", tenant, tenant_id=parent.id, name=tenant.name, parent=parent.name)
    return tenant


def set_status(tenant: Tenant, status: str) -> None:
    if status not in ("active", "suspended"):
        raise TenantError("status", "Unknown status.")
    if tenant.is_root:
        raise TenantError("status", "The platform itself cannot be suspended.")
    old, tenant.status = tenant.status, status
    audit.record(f"reseller.{'suspended' if status == 'suspended' else 'activated'}", tenant,
                 old=old, new=status)


def currency_in_use(tenant_id: int) -> str | None:
    """Why the reseller's currency cannot change now (its accounts, rate sheets or numbers are
    priced in it), or None."""
    from app.accounts.models import Account
    from app.rating.models import RateSheet

    def count(model):
        return db.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
                                 .execution_options(all_tenants=True)) or 0

    accounts, sheets = count(Account), count(RateSheet)
    if not accounts and not sheets:
        return None
    what = " and ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in
                        ((accounts, "account"), (sheets, "rate sheet")) if n)
    return f"The currency cannot change: this reseller has {what} in it."


def update_tenant(tenant: Tenant, *, name: str, email: str, currency: str, base_extension: int) -> None:
    if name.strip().lower() != (tenant.name or "").lower():
        _check_name(name.strip(), tenant.parent_id, tenant.id)
    currency = (currency or "").strip().upper()
    if currency != tenant.currency:
        currency = _currency(currency)
        if why := currency_in_use(tenant.id):
            raise TenantError("currency", why)
    changes = {}
    for field, value in (("name", name.strip()), ("email", email.strip().lower()),
                         ("currency", currency.upper()), ("base_extension", base_extension)):
        if getattr(tenant, field) != value:
            changes[field] = [getattr(tenant, field), value]
            setattr(tenant, field, value)
    if changes:
        _flush()
        audit.record("reseller.updated", tenant, **changes)


CALL_PLACES_CHOICES = tuple(range(CALL_PLACES_MIN, CALL_PLACES_MAX + 1))


def _checked_places(places) -> int:
    if isinstance(places, str) and places.strip().isdigit():
        places = int(places.strip())
    if isinstance(places, bool) or places not in CALL_PLACES_CHOICES:
        raise TenantError("call_charge_places",
                          f"Choose {', '.join(map(str, CALL_PLACES_CHOICES[:-1]))} or {CALL_PLACES_CHOICES[-1]} "
                          "decimal places.")
    return places


def set_call_charge_places(tenant: Tenant, places) -> bool:
    """The reseller's call charge precision: the decimals each call's cost is rounded to
    (docs/rating.md, "Call charge precision"). Calls rated from now on use it; calls already
    rated keep their cost. The watchers recompute the deadlines of the reseller's live calls
    at once (after the commit), so they round as the rater will. Flushes; False if unchanged."""
    places = _checked_places(places)
    old = tenant.call_charge_places
    if old == places:
        return False
    tenant.call_charge_places = places
    _flush()
    audit.record("reseller.call_charge_places", tenant, old=old, new=places)
    _announce_live_accounts(tenant.id)
    return True


def _announce_live_accounts(tenant_id: int) -> None:
    from app.accounts.models import Account
    from app.calls import in_use, live

    numbers = sorted(in_use.accounts_in_use() or ())
    for i in range(0, len(numbers), 5000):
        for number in db.session.execute(
                select(Account.account_number).where(Account.tenant_id == tenant_id,
                                                     Account.account_number.in_(numbers[i:i + 5000]))).scalars():
            live.announce(number)


def _flush() -> None:
    """A race with another request for the same name or short name ends as a TenantError
    (the caller rolls back)."""
    try:
        flush_or_conflict()
    except FieldError as e:
        raise TenantError(e.field or "name", e.message) from e


def set_adjustment_limit(tenant: Tenant, limit) -> bool:
    """The amount (in the tenant's currency) above which one ledger adjustment needs a second
    confirmation. Audited; True if it changed."""
    from decimal import Decimal

    from app import money

    try:
        limit = money.quantize(money.check_maximum(money.to_decimal(limit)), tenant.currency)
    except money.MoneyError as e:
        raise TenantError("adjustment_confirm_limit", str(e)) from None
    if limit < 0:
        raise TenantError("adjustment_confirm_limit", "The limit cannot be negative (0: confirm every adjustment).")
    old = Decimal(tenant.adjustment_confirm_limit if tenant.adjustment_confirm_limit is not None else "1000")
    if old == limit:
        return False
    tenant.adjustment_confirm_limit = limit
    audit.record("reseller.adjustment_limit", tenant, old=str(money.quantize(old, tenant.currency)), new=str(limit))
    _flush()
    return True


def set_user_decrease_immediate(tenant: Tenant, immediate: bool) -> bool:
    """Whether a lower user count applies at once with a prorated credit (True) or at the start
    of the account's next billing period (False). Changes already scheduled stay scheduled.
    Audited; True if it changed."""
    immediate = bool(immediate)
    if bool(tenant.user_decrease_immediate) == immediate:
        return False
    old = bool(tenant.user_decrease_immediate)
    tenant.user_decrease_immediate = immediate
    audit.record("reseller.user_decrease_mode", tenant, old="at once" if old else "next period",
                 new="at once" if immediate else "next period")
    _flush()
    return True
