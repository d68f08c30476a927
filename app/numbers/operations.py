"""DIDs ("incoming numbers"): platform inventory -> reseller spare -> account -> extension.

* The platform admin imports numbers from CSV (all lines good, or nothing imported) into the
  root tenant (status "platform"), then allocates them to resellers (status "spare").
* A reseller sets its own sell prices, in its own currency, and assigns spare numbers to its
  accounts (a priced number only to an account billed in that currency: one currency per
  account, and no exchange rates), optionally
  to one extension; each assignment charges the account the setup price and the monthly
  price prorated for the rest of the month. Release returns the number to "spare".

Assignment is one conditional UPDATE (`... WHERE status = 'spare'`): of two requests racing
for the same number the second finds no row to update and gets a clear message.
Flush, never commit.
"""
import csv
import io
from dataclasses import dataclass
from decimal import Decimal

import phonenumbers
import pycountry
from sqlalchemy import select, update

from app import audit, ledger, money
from app.billing.proration import local_today, prorate
from app.conflicts import FieldError
from app.extensions import db
from app.money import MONEY_SCALE
from app.numbers.models import Number
from provisioning import realtime
from tenants.models import Tenant, utcnow

MAX_IMPORT_LINES = 50_000

# --- import ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportRow:
    line: int
    number: str
    country: str
    setup_cost: Decimal
    monthly_cost: Decimal


class DidImportError(ValueError):
    def __init__(self, errors: list[tuple[int, str]]):
        super().__init__(f"{len(errors)} bad line(s)")
        self.errors = errors


def _is_header(cells) -> bool:
    return bool(cells) and cells[0].strip().lower().lstrip("\ufeff") in ("number", "did", "e164")


def parse_csv(text: str) -> list[ImportRow]:
    """Parse `number,country,setup_cost,monthly_cost` lines; every bad line is reported."""
    rows, errors, seen = [], [], {}
    reader = csv.reader(io.StringIO(text))
    for line_no, cells in enumerate(reader, start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        if line_no == 1 and _is_header(cells):
            continue
        if len(rows) + len(errors) >= MAX_IMPORT_LINES:
            errors.append((line_no, f"Too many lines: import at most {MAX_IMPORT_LINES} at a time."))
            break
        if len(cells) != 4:
            errors.append((line_no, f"Expected 4 columns (number, country, setup cost, monthly cost), found {len(cells)}."))
            continue
        raw_number, raw_country, raw_setup, raw_monthly = (c.strip() for c in cells)
        problems = []
        country = raw_country.upper()
        if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
            problems.append(f"“{raw_country}” is not a two-letter country code.")
            country = ""
        e164 = ""
        try:
            parsed = phonenumbers.parse(raw_number, country or None)
            if not phonenumbers.is_valid_number(parsed):
                problems.append(f"“{raw_number}” is not a valid phone number.")
            else:
                e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                region = phonenumbers.region_code_for_number(parsed)
                if country and region and region != country and region != "001":
                    problems.append(f"{e164} is a number of {region}, not {country}.")
        except phonenumbers.NumberParseException:
            problems.append(f"“{raw_number}” is not a phone number (use the +country format).")
        prices = []
        for label, raw in (("setup cost", raw_setup), ("monthly cost", raw_monthly)):
            try:
                prices.append(money.parse_amount(raw or "0", max_places=MONEY_SCALE))
            except (money.MoneyError, TypeError) as e:
                problems.append(f"{label}: {e}")
        if e164 and e164 in seen:
            problems.append(f"{e164} is also on line {seen[e164]}.")
        if problems:
            errors.append((line_no, " ".join(problems)))
            continue
        seen[e164] = line_no
        rows.append(ImportRow(line_no, e164, country, prices[0], prices[1]))
    if not rows and not errors:
        errors.append((0, "The file has no numbers."))
    if errors:
        raise DidImportError(errors)
    return rows


def root_tenant_id() -> int:
    return db.session.execute(
        select(Tenant.id).where(Tenant.parent_id.is_(None)).execution_options(all_tenants=True)
    ).scalar_one()


def import_numbers(text: str) -> int:
    """Import a CSV into the platform inventory: every line good, or nothing at all."""
    rows = parse_csv(text)
    existing = {}
    wanted = [r.number for r in rows]
    for i in range(0, len(wanted), 1000):
        for n in db.session.execute(
            select(Number.number).where(Number.number.in_(wanted[i:i + 1000])).execution_options(all_tenants=True)
        ).scalars():
            existing[n] = True
    errors = [(r.line, f"{r.number} is already in the inventory.") for r in rows if r.number in existing]
    if errors:
        raise DidImportError(errors)
    root = root_tenant_id()
    db.session.add_all(Number(tenant_id=root, number=r.number, country=r.country, setup_cost=r.setup_cost,
                              monthly_cost=r.monthly_cost, sell_setup=r.setup_cost,
                              sell_monthly=r.monthly_cost, status="platform") for r in rows)
    try:
        db.session.flush()
    except Exception as e:  # a concurrent import of the same numbers
        from sqlalchemy.exc import IntegrityError
        if isinstance(e, IntegrityError):
            raise DidImportError([(0, "Some of these numbers were imported by someone else at the same moment; nothing was imported.")]) from e
        raise
    audit.record("numbers.imported", None, tenant_id=root, count=len(rows))
    return len(rows)


# --- platform -> reseller ----------------------------------------------------------------------

def allocate(number_ids: list[int], tenant: Tenant) -> int:
    """Hand platform numbers to a reseller as spare numbers."""
    if tenant.is_root:
        raise FieldError("tenant_id", "Choose a reseller, not the platform itself.")
    if not number_ids:
        raise FieldError("number_ids", "Tick at least one number.")
    result = db.session.execute(
        update(Number).where(Number.id.in_(number_ids), Number.status == "platform")
        .values(tenant_id=tenant.id, status="spare", allocated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(set(number_ids)):
        raise FieldError("number_ids", "Some of these numbers are no longer in the platform inventory; reload and try again.")
    audit.record("numbers.allocated", tenant, count=result.rowcount)
    return result.rowcount


def reclaim(number: Number) -> None:
    """A spare number goes back to the platform inventory."""
    if number.status != "spare":
        raise FieldError(None, "Only a spare number can be taken back; release it from its account first.")
    old_tenant = number.tenant_id
    number.tenant_id = root_tenant_id()
    number.status = "platform"
    number.allocated_at = None
    audit.record("number.reclaimed", number, tenant_id=old_tenant, number=number.number)


def reseller_currency(tenant_id: int) -> str:
    return db.session.execute(select(Tenant.currency).where(Tenant.id == tenant_id)
                              .execution_options(all_tenants=True)).scalar_one()


def check_price_currency(number: Number, account) -> None:
    """Sell prices are in the reseller's currency: a priced number is charged only to an
    account billed in it."""
    if not (number.sell_setup or number.sell_monthly):
        return
    currency = reseller_currency(number.tenant_id)
    if account.currency != currency:
        raise FieldError("number_id", f"{number.number} is priced in {currency} (your currency), but the account "
                                      f"bills in {account.currency}: set its prices to 0 or choose an account in "
                                      f"{currency}.")


def set_sell_prices(number: Number, setup, monthly) -> None:
    """New sell prices (in the reseller's currency); refused for a number on an account billed
    in another currency unless both are 0."""
    from app.accounts.models import Account

    for value in (setup, monthly):
        try:
            money.check_maximum(money.to_decimal(value))
        except money.MoneyError as e:
            raise FieldError("sell_setup" if value is setup else "sell_monthly", str(e)) from None
    if number.account_id and (setup or monthly):
        account = db.session.execute(select(Account).where(Account.id == number.account_id)).scalar_one_or_none()
        currency = reseller_currency(number.tenant_id)
        if account is not None and account.currency != currency:
            raise FieldError("sell_monthly", f"{number.number} is on {account.display_name}, billed in "
                                             f"{account.currency}; prices are in {currency}: only 0 can be set.")
    old = (str(number.sell_setup), str(number.sell_monthly))
    number.sell_setup, number.sell_monthly = setup, monthly
    audit.record("number.priced", number, number=number.number, old=list(old), new=[str(setup), str(monthly)])


# --- reseller -> account -----------------------------------------------------------------------

@dataclass(frozen=True)
class NumberCharge:
    number_id: int
    number: str
    setup: Decimal
    monthly: Decimal          # prorated part charged now
    period: str

    @property
    def total(self) -> Decimal:
        return self.setup + self.monthly


def first_charges(numbers, account) -> list[NumberCharge]:
    day = local_today(account.timezone)
    out = []
    for n in numbers:
        p = prorate(n.sell_monthly, day, account.currency)
        out.append(NumberCharge(n.id, n.number, money.quantize(n.sell_setup, account.currency), p.amount, p.period))
    return out


def spare_numbers(tenant_id: int) -> list[Number]:
    return list(db.session.execute(
        select(Number).where(Number.tenant_id == tenant_id, Number.status == "spare").order_by(Number.number)
    ).scalars())


def assign(number_id: int, account, extension=None, *, charge: bool = True, check_credit: bool = True,
           created_by_id: int | None = None) -> Number:
    """Assign a spare number of the account's reseller to the account (and an extension)."""
    from app.billing.orders import record_order

    if account.status == "closed":
        raise FieldError("number_id", "This account is closed.")
    number = db.session.execute(
        select(Number).where(Number.id == number_id, Number.tenant_id == account.tenant_id)
    ).scalar_one_or_none()
    if number is None:
        raise FieldError("number_id", "Choose one of this reseller's spare numbers.")
    if extension is not None and extension.account_id != account.id:
        raise FieldError("extension_id", "Choose an extension of this account.")
    if charge:
        check_price_currency(number, account)
    charges = first_charges([number], account)[0] if charge else None
    if charge and check_credit and account.billing_type == "prepaid" and account.balance < charges.total:
        raise FieldError("number_id", (
            f"The balance {money.format_money(account.balance, account.currency)} does not cover "
            f"{number.number}'s first charges of {money.format_money(charges.total, account.currency)} "
            "(setup and the rest of this month). Add credit first."))
    result = db.session.execute(
        update(Number).where(Number.id == number_id, Number.status == "spare",
                             Number.tenant_id == account.tenant_id, Number.account_id.is_(None))
        .values(status="assigned", account_id=account.id,
                extension_id=extension.id if extension is not None else None, assigned_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise FieldError("number_id", f"{number.number} was just assigned to another account; choose another number.")
    db.session.refresh(number)
    if charge:
        _post_charges(account, charges, created_by_id)
    if extension is not None:
        refresh_caller_id(extension, account)
    record_order(account, "number", f"Number {number.number}", status="processed", number=number.number)
    audit.record("number.assigned", number, account_id=account.id, number=number.number,
                 extension=extension.number if extension is not None else None)
    return number


def _post_charges(account, c: NumberCharge, created_by_id=None) -> None:
    if c.setup:
        ledger.post(account.id, -c.setup, "number_charge", f"account:{account.id}:number:{c.number_id}:setup",
                    description=f"Number {c.number} setup", created_by_id=created_by_id)
    if c.monthly:
        ledger.post(account.id, -c.monthly, "number_charge", f"account:{account.id}:number:{c.number_id}:{c.period}",
                    description=f"Number {c.number} monthly ({c.period}, prorated)", created_by_id=created_by_id)


def move(number: Number, account, extension) -> None:
    """Point an assigned number at another extension of the same account (or none)."""
    if number.account_id != account.id:
        raise FieldError("number_id", "This number is not on this account.")
    if extension is not None and extension.account_id != account.id:
        raise FieldError("extension_id", "Choose an extension of this account.")
    old_ext_id = number.extension_id
    number.extension_id = extension.id if extension is not None else None
    db.session.flush()
    from provisioning.models import Extension
    for ext_id in {old_ext_id, number.extension_id} - {None}:
        ext = db.session.execute(select(Extension).where(Extension.id == ext_id)).scalar_one()
        refresh_caller_id(ext, account)
    audit.record("number.moved", number, account_id=account.id, number=number.number,
                 extension=extension.number if extension is not None else None)


def release(number: Number, account=None) -> None:
    """Back to the reseller's spare numbers; charges already taken stay (no refund)."""
    from provisioning.models import Extension

    if number.status != "assigned":
        raise FieldError(None, "This number is not assigned.")
    account_id, ext_id = number.account_id, number.extension_id
    number.status, number.account_id, number.extension_id, number.assigned_at = "spare", None, None, None
    db.session.flush()
    if ext_id is not None and account is not None:
        ext = db.session.execute(select(Extension).where(Extension.id == ext_id)).scalar_one_or_none()
        if ext is not None and ext.active:
            refresh_caller_id(ext, account)
    audit.record("number.released", number, account_id=account_id, number=number.number)


def release_all(account) -> int:
    numbers = list(db.session.execute(select(Number).where(Number.account_id == account.id)).scalars())
    for n in numbers:
        release(n, None)
    return len(numbers)


def detach_from_extension(extension) -> None:
    for n in db.session.execute(select(Number).where(Number.extension_id == extension.id)).scalars():
        n.extension_id = None


def numbers_of_account(account_id: int) -> list[Number]:
    return list(db.session.execute(
        select(Number).where(Number.account_id == account_id).order_by(Number.number)
    ).scalars())


def refresh_caller_id(extension, account) -> None:
    """Outbound caller id: the extension's first DID if it has one, else its extension number."""
    did = db.session.execute(
        select(Number.number).where(Number.extension_id == extension.id).order_by(Number.id).limit(1)
    ).scalar_one_or_none()
    extension.caller_id = realtime.caller_id(account.display_name, did or extension.number)
    if extension.active:
        realtime.write_extension(extension, account)


def refresh_caller_ids(account) -> None:
    """Re-write every active extension's rows and caller id (after a change of name, language...)."""
    from provisioning.models import Extension

    for ext in db.session.execute(
        select(Extension).where(Extension.account_id == account.id, Extension.active.is_(True))
    ).scalars():
        refresh_caller_id(ext, account)   # writes the realtime rows too
