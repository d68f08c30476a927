"""Taxes: the computation (pure), a tenant's taxes list and each account's taxes.

Computation (docs/invoicing.md "Taxes"):
- taxes apply in `position` order (then id); a simple tax is `rate %` of the subtotal, a
  compound tax `rate %` of the subtotal plus every tax before it;
- each tax amount is rounded once, half-up, to the currency's minor unit (app/money.py);
- tax-inclusive amounts (a prepaid top-up of G): the net N is chosen so that N plus the taxes
  computed on N is exactly G; the taxes are then what `compute` gives for N.

An exempt account pays no tax whatever taxes it has picked.
"""
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select

from app import audit, money
from app.accounts.models import Account
from app.conflicts import FieldError, flush_or_conflict
from app.extensions import db
from app.invoicing.models import AccountTax, InvoiceTax, Tax

RATE_PLACES = 4
MAX_RATE = Decimal(100)
MAX_POSITION = 999
NAME_MAX = 80
REASON_MAX = 255


@dataclass(frozen=True)
class TaxSpec:
    """What the computation needs of a tax (a Tax row, or a copy kept on a document)."""
    name: str
    rate: Decimal          # percent
    compound: bool = False
    position: int = 1
    tax_id: int | None = None


@dataclass(frozen=True)
class TaxLine:
    position: int
    tax_id: int | None
    name: str
    rate: Decimal
    compound: bool
    base: Decimal
    amount: Decimal

    def as_dict(self) -> dict:
        return {"tax_id": self.tax_id, "name": self.name, "rate": str(self.rate), "compound": self.compound,
                "base": str(self.base), "amount": str(self.amount)}

    @classmethod
    def from_dict(cls, d: dict, position: int) -> "TaxLine":
        return cls(position, d.get("tax_id"), d["name"], Decimal(d["rate"]), bool(d["compound"]), Decimal(d["base"]),
                   Decimal(d["amount"]))


def ordered(taxes) -> list[TaxSpec]:
    return sorted(taxes, key=lambda t: (t.position, t.tax_id or 0, t.name))


def compute(subtotal, taxes, currency: str) -> list[TaxLine]:
    """The taxes of `subtotal` (any sign: a credit note's are negative), in order."""
    subtotal = money.to_decimal(subtotal)
    lines, running = [], subtotal
    for i, t in enumerate(ordered(taxes), start=1):
        base = running if t.compound else subtotal
        amount = money.quantize(base * money.to_decimal(t.rate) / 100, currency)
        lines.append(TaxLine(i, t.tax_id, t.name, money.to_decimal(t.rate), bool(t.compound), base, amount))
        running += amount
    return lines


def total_of(lines) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))


def multiplier(taxes) -> Decimal:
    """gross / net before rounding: 1 + each simple rate + each compound rate × what came before."""
    m = Decimal(1)
    for t in ordered(taxes):
        rate = money.to_decimal(t.rate) / 100
        m += rate * (m if t.compound else 1)
    return m


def split_inclusive(gross, taxes, currency: str) -> tuple[Decimal, list[TaxLine]]:
    """(net, tax lines) with net + sum(taxes) == gross exactly, taxes computed on net.

    The net is gross / multiplier rounded to the minor unit; when the rounded taxes of that net
    miss the gross by a unit, the nearest net whose taxes close the gap is taken; if no net does
    (a rounding step of several units, very high rates), the net absorbs the difference."""
    gross = money.quantize(gross, currency)
    taxes = ordered(taxes)
    if not taxes:
        return gross, []
    unit = Decimal(1).scaleb(-money.minor_units(currency))
    guess = money.quantize(gross / multiplier(taxes), currency)
    for step in (0, -1, 1, -2, 2, -3, 3):
        net = guess + step * unit
        lines = compute(net, taxes, currency)
        if net + total_of(lines) == gross:
            return net, lines
    lines = compute(guess, taxes, currency)
    return gross - total_of(lines), lines


# --- validation -----------------------------------------------------------------------------------

def parse_rate(text) -> Decimal:
    """A rate in percent: 0 to 100, at most 4 decimals. FieldError("rate", …) otherwise."""
    raw = str(text if text is not None else "").strip().rstrip("%").strip()
    if not raw:
        raise FieldError("rate", "Enter the rate in percent, e.g. 20 or 7.5.")
    try:
        rate = Decimal(raw)
    except InvalidOperation:
        raise FieldError("rate", f"“{raw[:20]}” is not a number; enter the rate in percent, e.g. 20 or 7.5.") from None
    if not rate.is_finite():
        raise FieldError("rate", "Enter the rate in percent, e.g. 20 or 7.5.")
    if -rate.as_tuple().exponent > RATE_PLACES and rate != rate.quantize(Decimal(1).scaleb(-RATE_PLACES)):
        raise FieldError("rate", f"Use at most {RATE_PLACES} decimal places.")
    if rate < 0 or rate > MAX_RATE:
        raise FieldError("rate", "The rate is from 0 to 100 (percent).")
    return rate.quantize(Decimal(1).scaleb(-RATE_PLACES))


def rate_text(rate) -> str:
    """20.0000 -> "20", 7.5000 -> "7.5" (as a person typed it)."""
    return format(Decimal(rate).normalize(), "f")


def parse_position(value) -> int:
    try:
        position = int(str(value).strip())
    except (TypeError, ValueError):
        raise FieldError("position", "Enter the order as a whole number (1 is applied first).") from None
    if not 1 <= position <= MAX_POSITION:
        raise FieldError("position", f"The order is from 1 to {MAX_POSITION}.")
    return position


def _clean_name(name) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise FieldError("name", "Give the tax a name, e.g. “VAT 20%”.")
    if len(name) > NAME_MAX:
        raise FieldError("name", f"At most {NAME_MAX} characters.")
    return name


def _check_name_free(tenant_id: int, name: str, tax_id: int | None = None) -> None:
    q = select(Tax.id).where(Tax.tenant_id == tenant_id, func.lower(Tax.name) == name.lower())
    if tax_id is not None:
        q = q.where(Tax.id != tax_id)
    if db.session.execute(q).first() is not None:
        raise FieldError("name", f"A tax named “{name}” already exists; names are unique.")


# --- the taxes list ------------------------------------------------------------------------------

def taxes_of(tenant_id: int, *, active_only: bool = False) -> list[Tax]:
    q = select(Tax).where(Tax.tenant_id == tenant_id)
    if active_only:
        q = q.where(Tax.active.is_(True))
    return list(db.session.execute(q.order_by(Tax.position, Tax.id)).scalars())


def next_position(tenant_id: int) -> int:
    top = db.session.execute(select(func.max(Tax.position)).where(Tax.tenant_id == tenant_id)).scalar()
    return min((top or 0) + 1, MAX_POSITION)


def create_tax(tenant_id: int, *, name, rate, position=None, compound: bool = False, active: bool = True) -> Tax:
    """A new tax of the tenant's list. FieldError (nothing written) for a bad field."""
    name = _clean_name(name)
    rate = parse_rate(rate)
    position = next_position(tenant_id) if position in (None, "") else parse_position(position)
    _check_name_free(tenant_id, name)
    tax = Tax(tenant_id=tenant_id, name=name, rate=rate, position=position, compound=bool(compound),
              active=bool(active))
    db.session.add(tax)
    flush_or_conflict()
    audit.record("tax.created", tax, name=name, rate=str(rate), position=position, compound=bool(compound))
    return tax


def update_tax(tax: Tax, *, name, rate, position, compound: bool, active: bool) -> dict:
    """Change a tax; documents already issued keep their own copy. Returns the changes."""
    values = {"name": _clean_name(name), "rate": parse_rate(rate), "position": parse_position(position),
              "compound": bool(compound), "active": bool(active)}
    _check_name_free(tax.tenant_id, values["name"], tax.id)
    changes = {k: [str(getattr(tax, k)), str(v)] for k, v in values.items() if getattr(tax, k) != v}
    for k, v in values.items():
        setattr(tax, k, v)
    flush_or_conflict()
    if changes:
        audit.record("tax.changed", tax, changes=changes)
    return changes


def tax_in_use(tax_id: int) -> bool:
    return db.session.execute(select(InvoiceTax.id).where(InvoiceTax.tax_id == tax_id).limit(1)).first() is not None


def delete_tax(tax: Tax) -> int:
    """Delete a tax no invoice used (its account links go with it); a used one is refused:
    deactivate it instead. Returns how many accounts had it."""
    if tax_in_use(tax.id):
        raise FieldError(None, f"“{tax.name}” is on issued invoices: deactivate it instead of deleting it.")
    links = db.session.execute(select(AccountTax).where(AccountTax.tax_id == tax.id)).scalars().all()
    for link in links:
        db.session.delete(link)
    audit.record("tax.deleted", tax, name=tax.name, rate=str(tax.rate), accounts=len(links))
    db.session.delete(tax)
    db.session.flush()
    return len(links)


# --- an account's taxes ----------------------------------------------------------------------------

def account_tax_ids(account_id: int) -> list[int]:
    return list(db.session.execute(select(AccountTax.tax_id).where(AccountTax.account_id == account_id)
                                   .order_by(AccountTax.tax_id)).scalars())


def set_account_taxes(account: Account, tax_ids, *, exempt: bool = False, reason: str = "") -> dict:
    """The taxes the account pays, and its exemption. FieldError for a tax not of its tenant,
    or an exemption without a reason. Returns the changes (audited)."""
    wanted = sorted({int(t) for t in (tax_ids or [])})
    reason = " ".join(str(reason or "").split())
    if exempt and not reason:
        raise FieldError("tax_exempt_reason", "Say why the account is tax exempt (printed on its invoices).")
    if len(reason) > REASON_MAX:
        raise FieldError("tax_exempt_reason", f"At most {REASON_MAX} characters.")
    if wanted:
        known = set(db.session.execute(select(Tax.id).where(Tax.id.in_(wanted),
                                                            Tax.tenant_id == account.tenant_id)).scalars())
        if set(wanted) - known:
            raise FieldError("tax_ids", "Choose taxes from the list.")
    current = account_tax_ids(account.id)
    changes = {}
    if current != wanted:
        changes["taxes"] = [current, wanted]
        for link in db.session.execute(select(AccountTax).where(AccountTax.account_id == account.id,
                                                                AccountTax.tax_id.not_in(wanted))).scalars():
            db.session.delete(link)
        for tax_id in set(wanted) - set(current):
            db.session.add(AccountTax(tenant_id=account.tenant_id, account_id=account.id, tax_id=tax_id))
    if bool(account.tax_exempt) != bool(exempt):
        changes["tax_exempt"] = [bool(account.tax_exempt), bool(exempt)]
        account.tax_exempt = bool(exempt)
    new_reason = reason if exempt else ""
    if (account.tax_exempt_reason or "") != new_reason:
        changes["tax_exempt_reason"] = [account.tax_exempt_reason or "", new_reason]
        account.tax_exempt_reason = new_reason
    db.session.flush()
    if changes:
        audit.record("account.taxes_changed", account, changes=changes)
    return changes


def applicable(account_id: int, exempt: bool | None = None) -> list[TaxSpec]:
    """The active taxes an account pays, in order ([] for an exempt account). `exempt`: the
    account's flag when the caller has read it already."""
    if exempt is None:
        exempt = db.session.execute(select(Account.tax_exempt).where(Account.id == account_id)).scalar()
    if exempt is None or exempt:
        return []
    # Columns, not Tax objects (a Stripe top-up asks this on the webhook's path); spec_of reads
    # the same names off a row.
    rows = db.session.execute(
        select(Tax.name, Tax.rate, Tax.compound, Tax.position, Tax.id).join(AccountTax, AccountTax.tax_id == Tax.id)
        .where(AccountTax.account_id == account_id, Tax.active.is_(True))
        .order_by(Tax.position, Tax.id)).all()
    return [spec_of(row) for row in rows]


def applicable_many(account_ids) -> dict[int, list[TaxSpec]]:
    """`applicable` for many accounts at once (the invoicing run): two queries."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    exempt = dict(db.session.execute(select(Account.id, Account.tax_exempt).where(Account.id.in_(ids))).all())
    out: dict[int, list[TaxSpec]] = {a: [] for a in ids}
    for account_id, tax in db.session.execute(
            select(AccountTax.account_id, Tax).join(Tax, Tax.id == AccountTax.tax_id)
            .where(AccountTax.account_id.in_(ids), Tax.active.is_(True)).order_by(Tax.position, Tax.id)).all():
        if not exempt.get(account_id):
            out[account_id].append(spec_of(tax))
    return out


def spec_of(tax: Tax) -> TaxSpec:
    return TaxSpec(tax.name, Decimal(tax.rate), bool(tax.compound), tax.position, tax.id)
