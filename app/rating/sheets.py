"""Rates Manager operations: rate sheets and their rows. Flush, never commit.

Every change to a sheet or its rows bumps `RateSheet.version` (one atomic UPDATE), so every
process's cached prefix index (app/rating/index.get_index) is rebuilt on its next call.
A row is one price of one prefix from its `effective_from` date: a new price is scheduled by
adding a row with a later date, today's row is not touched.
"""
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import audit
from app.billing.models import ServicePlan
from app.conflicts import FieldError
from app.extensions import db
from app.money import MoneyError
from app.rating.cost import MAX_AMOUNT, MAX_PREFIX_DIGITS, Tariff
from app.rating.models import Rate, RateSheet
from tenants.models import Tenant, utcnow

DEFAULT_EFFECTIVE = date(2000, 1, 1)    # Rate.effective_from's default: "always"
RATE_FIELDS = ("prefix", "country", "description", "rate_per_minute", "connect_fee", "first_block", "increment",
               "minimum_charge", "effective_from")
PAGE_SIZES = (50, 100, 200)


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


# -- sheets ----------------------------------------------------------------------------------
def _check_name(tenant_id: int, name: str, sheet_id: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise FieldError("name", "Give the rate sheet a name.")
    if len(name) > 120:
        raise FieldError("name", "At most 120 characters.")
    q = select(RateSheet.id).where(RateSheet.tenant_id == tenant_id, func.lower(RateSheet.name) == name.lower())
    if sheet_id is not None:
        q = q.where(RateSheet.id != sheet_id)
    if db.session.execute(q).first() is not None:
        raise FieldError("name", "Another rate sheet of yours already has this name.")
    return name


def _check_short_call(seconds, charge) -> tuple[int, Decimal]:
    seconds = int(seconds or 0)
    if seconds < 0 or seconds > 3600:
        raise FieldError("short_call_seconds", "Between 0 (off) and 3600 seconds.")
    charge = _amount(charge, "short_call_charge", "Short-call charge")
    return seconds, charge


def _flush_named(field: str, message: str) -> None:
    """Flush; a unique-constraint race becomes a FieldError (the caller must roll back)."""
    try:
        db.session.flush()
    except IntegrityError as e:
        raise FieldError(field, message) from e


def bump_version(sheet_id: int) -> None:
    db.session.execute(update(RateSheet).where(RateSheet.id == sheet_id)
                       .values(version=RateSheet.version + 1, updated_at=utcnow())
                       .execution_options(synchronize_session="fetch"))


def _currency(code) -> str:
    from app.money import check_currency

    try:
        return check_currency(code or "USD")
    except MoneyError as e:
        raise FieldError("currency", str(e)) from None


def create_sheet(tenant_id: int, *, name: str, currency: str, description: str = "",
                 short_call_seconds: int = 0, short_call_charge=Decimal("0")) -> RateSheet:
    name = _check_name(tenant_id, name)
    currency = _currency(currency)
    seconds, charge = _check_short_call(short_call_seconds, short_call_charge)
    sheet = RateSheet(tenant_id=tenant_id, name=name, currency=(currency or "USD").upper(),
                      description=(description or "").strip()[:255], short_call_seconds=seconds,
                      short_call_charge=charge)
    db.session.add(sheet)
    _flush_named("name", "Another rate sheet of yours already has this name.")
    audit.record("rate_sheet.created", sheet, name=name)
    return sheet


def update_sheet(sheet: RateSheet, *, name: str, currency: str, description: str = "",
                 short_call_seconds: int = 0, short_call_charge=Decimal("0")) -> dict:
    changes = {}
    name = _check_name(sheet.tenant_id, name, sheet.id)
    seconds, charge = _check_short_call(short_call_seconds, short_call_charge)
    currency = (currency or sheet.currency).upper()
    if currency != sheet.currency:
        currency = _currency(currency)
    if currency != sheet.currency and usage(sheet).plans:
        raise FieldError("currency", "Accounts are billed from this sheet: its currency cannot change while "
                                     "their service plans use it. Copy the sheet instead.")
    if currency != sheet.currency and usage(sheet).buyers:
        raise FieldError("currency", "Sub-resellers buy at this sheet in its currency: it cannot change while "
                                     "they do. Copy the sheet instead.")
    for field, value in (("name", name), ("currency", currency), ("description", (description or "").strip()[:255]),
                         ("short_call_seconds", seconds), ("short_call_charge", charge)):
        if getattr(sheet, field) != value:
            changes[field] = [str(getattr(sheet, field)), str(value)]
            setattr(sheet, field, value)
    if changes:
        _flush_named("name", "Another rate sheet of yours already has this name.")
        bump_version(sheet.id)
        audit.record("rate_sheet.updated", sheet, changes=changes)
    return changes


def copy_sheet(sheet: RateSheet, new_name: str) -> RateSheet:
    """A new sheet with the same settings and every row (all effective dates)."""
    copy = create_sheet(sheet.tenant_id, name=new_name, currency=sheet.currency, description=sheet.description,
                        short_call_seconds=sheet.short_call_seconds, short_call_charge=sheet.short_call_charge)
    columns = ["tenant_id", "rate_sheet_id", "prefix", "country", "description", "rate_per_minute", "connect_fee",
               "first_block", "increment", "minimum_charge", "effective_from"]
    source = select(literal(sheet.tenant_id), literal(copy.id), Rate.prefix, Rate.country, Rate.description,
                    Rate.rate_per_minute, Rate.connect_fee, Rate.first_block, Rate.increment, Rate.minimum_charge,
                    Rate.effective_from).where(Rate.rate_sheet_id == sheet.id)
    db.session.execute(insert(Rate.__table__).from_select(columns, source))
    audit.record("rate_sheet.copied", copy, source_id=sheet.id, source_name=sheet.name)
    return copy


@dataclass
class Usage:
    plans: int                 # service plans (accounts) rated by the sheet
    buyers: list[str]          # sub-resellers that buy at the sheet

    @property
    def in_use(self) -> bool:
        return bool(self.plans or self.buyers)

    def message(self, sheet_name: str) -> str:
        parts = []
        if self.plans:
            parts.append(f"the service plan{'s' if self.plans != 1 else ''} of {self.plans} "
                         f"account{'s' if self.plans != 1 else ''}")
        if self.buyers:
            parts.append(f"sub-reseller{'s' if len(self.buyers) != 1 else ''} {', '.join(self.buyers)} "
                         f"(buy{'s' if len(self.buyers) == 1 else ''} at it)")
        return f"“{sheet_name}” is used by {' and '.join(parts)}: move them to another sheet first."


def usage(sheet: RateSheet) -> Usage:
    # Counted platform-wide by the sheet's id: a use outside the current scope still counts.
    plans = db.session.scalar(select(func.count()).select_from(ServicePlan)
                              .where(ServicePlan.rate_sheet_id == sheet.id).execution_options(all_tenants=True))
    buyers = list(db.session.execute(select(Tenant.name).where(Tenant.buy_rate_sheet_id == sheet.id)
                                     .order_by(Tenant.name).execution_options(all_tenants=True)).scalars())
    return Usage(plans or 0, buyers)


def delete_sheet(sheet: RateSheet) -> None:
    """Delete a sheet and its rows, unless a plan rates by it or a sub-reseller buys at it."""
    found = usage(sheet)
    if found.in_use:
        raise FieldError(None, found.message(sheet.name))
    name, sheet_id = sheet.name, sheet.id
    audit.record("rate_sheet.deleted", sheet, name=name)
    db.session.execute(Rate.__table__.delete().where(Rate.__table__.c.rate_sheet_id == sheet_id))
    db.session.delete(sheet)
    try:
        db.session.flush()
    except IntegrityError as e:   # a plan took the sheet between the check and the delete
        raise FieldError(None, f"“{name}” was just given to an account or sub-reseller; nothing was deleted.") from e


def sheets_of(tenant_id: int) -> list[tuple[RateSheet, int]]:
    """The tenant's own sheets with their row counts (each counted on the sheet's own index range)."""
    rows = select(func.count()).where(Rate.rate_sheet_id == RateSheet.id).correlate(RateSheet).scalar_subquery()
    return [(s, n or 0) for s, n in db.session.execute(
        select(RateSheet, rows).where(RateSheet.tenant_id == tenant_id).order_by(RateSheet.name))]


# -- rows ------------------------------------------------------------------------------------
def _amount(value, field: str, label: str, required: bool = False) -> Decimal:
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise FieldError(field, f"{label} is required.")
        return Decimal("0")
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")          # a decimal comma: 0,0123
    try:
        d = Decimal(text)
    except ArithmeticError:
        raise FieldError(field, f"“{text}” is not a number.") from None
    if not d.is_finite():
        raise FieldError(field, f"“{text}” is not a number.")
    if d < 0:
        raise FieldError(field, f"{label} cannot be negative.")
    if d >= MAX_AMOUNT:
        raise FieldError(field, f"{label} must be less than {MAX_AMOUNT:,}.")
    if d != d.quantize(Decimal("0.000001")):
        raise FieldError(field, f"{label}: use at most 6 decimal places.")
    return d


def _seconds(value, field: str, label: str, minimum: int) -> int:
    if value is None or str(value).strip() == "":
        raise FieldError(field, f"{label} is required (whole seconds).")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise FieldError(field, f"{label} must be a whole number of seconds.") from None
    if n < minimum:
        raise FieldError(field, f"{label} must be at least {minimum} s.")
    if n > 86_400:
        raise FieldError(field, f"{label} is longer than a day.")
    return n


def clean_rate(data: dict) -> dict:
    """Typed values of a rate row, or FieldError naming the first bad field."""
    from app.rating.countries import country_for_prefix, known_countries

    prefix = str(data.get("prefix") or "").strip().lstrip("+")
    if prefix.startswith("00"):
        prefix = prefix[2:]
    if not prefix:
        raise FieldError("prefix", "A prefix is required: the dialled digits, country code first.")
    if not (prefix.isascii() and prefix.isdigit()):
        raise FieldError("prefix", "Digits only, country code first (E.164), e.g. 44 or 447.")
    if prefix[0] == "0":
        raise FieldError("prefix", "A prefix cannot start with 0: write it country code first (E.164).")
    if len(prefix) > MAX_PREFIX_DIGITS:
        raise FieldError("prefix", f"At most {MAX_PREFIX_DIGITS} digits.")
    country = str(data.get("country") or "").strip().upper()
    if country and country not in known_countries():
        raise FieldError("country", "An ISO 3166 alpha-2 code such as GB (the United Kingdom is GB, not UK)."
                         if country == "UK" else "An ISO 3166 alpha-2 code such as GB, or empty to derive it.")
    if not country:
        country = country_for_prefix(prefix)
    description = str(data.get("description") or "").strip()
    if len(description) > 120:
        raise FieldError("description", "At most 120 characters.")
    values = {
        "prefix": prefix, "country": country, "description": description,
        "rate_per_minute": _amount(data.get("rate_per_minute"), "rate_per_minute", "Rate per minute", True),
        "connect_fee": _amount(data.get("connect_fee"), "connect_fee", "Connect fee"),
        "first_block": _seconds(data.get("first_block"), "first_block", "First block", 0),
        "increment": _seconds(data.get("increment"), "increment", "Increment", 1),
        "minimum_charge": _amount(data.get("minimum_charge"), "minimum_charge", "Minimum charge"),
    }
    effective = data.get("effective_from")
    if isinstance(effective, str):
        try:
            effective = date.fromisoformat(effective.strip()) if effective.strip() else None
        except ValueError:
            raise FieldError("effective_from", "A date as YYYY-MM-DD.") from None
    values["effective_from"] = effective or today_utc()
    try:   # the engine's own checks, so a saved row always loads into the index
        Tariff(values["prefix"], values["country"], description, values["rate_per_minute"], values["connect_fee"],
               values["first_block"], values["increment"], values["minimum_charge"])
    except (ValueError, MoneyError) as e:
        raise FieldError(None, str(e)) from None
    return values


def _check_unique(sheet_id: int, prefix: str, effective: date, rate_id: int | None = None) -> None:
    q = select(Rate.id).where(Rate.rate_sheet_id == sheet_id, Rate.prefix == prefix, Rate.effective_from == effective)
    if rate_id is not None:
        q = q.where(Rate.id != rate_id)
    if db.session.execute(q).first() is not None:
        raise FieldError("effective_from", f"Prefix {prefix} already has a price from {effective.isoformat()}: "
                                           "edit that row, or choose another date.")


def add_rate(sheet: RateSheet, data: dict) -> Rate:
    values = clean_rate(data)
    _check_unique(sheet.id, values["prefix"], values["effective_from"])
    rate = Rate(tenant_id=sheet.tenant_id, rate_sheet_id=sheet.id, **values)
    db.session.add(rate)
    _flush_named("effective_from", f"Prefix {values['prefix']} already has a price from that date.")
    bump_version(sheet.id)
    return rate


def update_rate(rate: Rate, data: dict) -> dict:
    values = clean_rate(data)
    _check_unique(rate.rate_sheet_id, values["prefix"], values["effective_from"], rate.id)
    changes = {}
    for field, value in values.items():
        if getattr(rate, field) != value:
            changes[field] = [str(getattr(rate, field)), str(value)]
            setattr(rate, field, value)
    if changes:
        _flush_named("effective_from", f"Prefix {values['prefix']} already has a price from that date.")
        bump_version(rate.rate_sheet_id)
    return changes


def delete_rate(rate: Rate) -> None:
    sheet_id = rate.rate_sheet_id
    db.session.delete(rate)
    db.session.flush()
    bump_version(sheet_id)


@dataclass
class RatePage:
    rows: list
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.size + 1

    @property
    def last(self) -> int:
        return min(self.page * self.size, self.total)


def search_filter(q: str):
    """Digits: prefixes starting with them; two letters: that country; else the description."""
    q = (q or "").strip()
    if not q:
        return None
    digits = q.lstrip("+")
    if digits.isdigit():
        return Rate.prefix.like(digits[:MAX_PREFIX_DIGITS] + "%")
    if len(q) == 2 and q.isalpha():
        return or_(Rate.country == q.upper(), func.lower(Rate.description).like(q.lower() + "%"))
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(Rate.description).like(f"%{escaped[:100]}%", escape="\\")


def count_rates(sheet_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Rate).where(Rate.rate_sheet_id == sheet_id)) or 0


def list_rates(sheet_id: int, q: str = "", page: int = 1, size: int = 50) -> RatePage:
    size = size if size in PAGE_SIZES else PAGE_SIZES[0]
    where = [Rate.rate_sheet_id == sheet_id]
    f = search_filter(q)
    if f is not None:
        where.append(f)
    total = db.session.scalar(select(func.count()).select_from(Rate).where(*where)) or 0
    pages = max(1, -(-total // size))
    page = min(max(page, 1), pages)
    rows = list(db.session.execute(select(Rate).where(*where).order_by(Rate.prefix, Rate.effective_from)
                                   .offset((page - 1) * size).limit(size)).scalars())
    return RatePage(rows, total, page, size)


# -- sub-resellers' buy sheets -----------------------------------------------------------------
def children_of(tenant_id: int) -> list[Tenant]:
    return list(db.session.execute(select(Tenant).where(Tenant.parent_id == tenant_id).order_by(Tenant.name)).scalars())


def set_buy_sheet(child: Tenant, parent_id: int, sheet_id: int | None) -> None:
    """The sheet a direct sub-reseller buys at (its cost price for margin reports)."""
    if child.parent_id != parent_id:
        raise FieldError(None, "Only your own sub-resellers buy at your rate sheets.")
    if sheet_id:
        found = db.session.execute(select(RateSheet.name, RateSheet.currency).where(
            RateSheet.id == sheet_id, RateSheet.tenant_id == parent_id)).first()
        if found is None:
            raise FieldError("rate_sheet_id", "Choose one of your rate sheets.")
        # Buy and sell prices are compared call by call: no currency conversion in between.
        if found.currency != child.currency:
            raise FieldError("rate_sheet_id", f"“{found.name}” is in {found.currency}, but this sub-reseller bills "
                                              f"in {child.currency}: choose a {child.currency} sheet.")
    if child.buy_rate_sheet_id != (sheet_id or None):
        audit.record("tenant.buy_rate_sheet", child, old=child.buy_rate_sheet_id, new=sheet_id or None)
        child.buy_rate_sheet_id = sheet_id or None
        db.session.flush()


def countries_without_rates(sheet_id: int | None, countries) -> list[str]:
    """The countries (ISO codes) among `countries` that have no row in the sheet, sorted.

    The rating engine opens a call by the country of the rate row its destination matches:
    a country opened by a plan whose sheet has no row for it can never be rated (every call
    there is "no rate for ..." or rated under another country). The wizard warns about these."""
    wanted = sorted({c for c in countries if c})
    if not sheet_id or not wanted:
        return []
    have = set(db.session.execute(
        select(Rate.country).where(Rate.rate_sheet_id == sheet_id, Rate.country.in_(wanted)).distinct()).scalars())
    return [c for c in wanted if c not in have]
