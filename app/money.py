"""The one money module: every amount is a Decimal, rounded once, by one rule.

Rule: amounts are rounded to the currency's minor unit (ISO 4217 via Babel), ROUND_HALF_UP,
exactly once, at the point an amount becomes a charge, credit or price (`quantize`).
Rates (per-minute prices) keep RATE_PLACES decimals and are never rounded to cents
on their own: only the resulting charge is.

Call charges are the one exception to "the minor unit": a call's cost is rounded once to the
reseller's *call charge precision* (Tenant.call_charge_places, 2 to 4 decimals, see
`call_charge_places`), as carriers bill, and balances and the ledger keep it. Money people pay
(credits, top-ups, DID prices, user charges, invoice lines) stays at the minor unit.
"""
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency, get_currency_precision

ZERO = Decimal("0")
RATE_PLACES = 6          # per-minute rates, connect fees in rate sheets
MONEY_SCALE = 4          # Numeric(18, 4) columns: room for 3-decimal currencies
RATE_SCALE = RATE_PLACES
CALL_PLACES_DEFAULT = 4  # a new reseller's call charge precision (VoIP carriers bill to 4 places)
CALL_PLACES_MIN, CALL_PLACES_MAX = 2, MONEY_SCALE    # the setting's range; columns hold 4 places


class MoneyError(ValueError):
    """A value that is not a valid amount; the message is fit for a form field."""


def minor_units(currency: str) -> int:
    return get_currency_precision((currency or "USD").upper())


def quantize(amount, currency: str = "USD", places: int | None = None) -> Decimal:
    """Round an amount to the currency's minor unit (or to `places` decimals: a call charge at
    its `call_charge_places`), half-up. The only rounding of money."""
    p = minor_units(currency) if places is None else places
    exp = _EXPONENTS.get(p) or Decimal(1).scaleb(-p)
    return to_decimal(amount).quantize(exp, rounding=ROUND_HALF_UP)


_EXPONENTS = {p: Decimal(1).scaleb(-p) for p in range(0, 7)}


def call_charge_places(setting: int | None, currency: str) -> int:
    """Decimals a call's cost is rounded to: the reseller's setting (2..4, None: the default),
    never coarser than the currency's own minor unit (KWD has 3: a setting of 2 rates KWD calls
    to 3 places) and never finer than the columns keep (MONEY_SCALE). A currency without minor
    units (JPY) is rated to the setting's places of the unit: 0.0042 JPY at 4."""
    places = CALL_PLACES_DEFAULT if setting is None else int(setting)
    if not CALL_PLACES_MIN <= places <= CALL_PLACES_MAX:
        raise ValueError(f"Call charge precision must be {CALL_PLACES_MIN} to {CALL_PLACES_MAX} decimal places.")
    return min(max(places, minor_units(currency)), MONEY_SCALE)


def to_decimal(value) -> Decimal:
    """Decimal from str/int/Decimal. Floats are refused: they have already lost cents."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("money must not be a float or bool; pass a str or Decimal")
    if isinstance(value, int):
        return Decimal(value)
    if value is None:
        raise MoneyError("An amount is required.")
    try:
        d = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise MoneyError(f"“{value}” is not a number.") from None
    if not d.is_finite():
        raise MoneyError(f"“{value}” is not a number.")
    return d


# "1.000,50" or "10,50": a decimal comma (and maybe thousands dots), as many locales write it.
_DECIMAL_COMMA = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$|^[-+]?\d+,\d{1,2}$")


def parse_amount(text, currency: str = "USD", *, allow_negative=False, max_places=None) -> Decimal:
    """Parse a typed amount for a form: clear message if it is not a valid amount."""
    if isinstance(text, str) and _DECIMAL_COMMA.match(text.strip()):
        raise MoneyError(f"“{text.strip()[:20]}”: use a dot for decimals and no thousands dots, "
                         "e.g. 1000.50.")
    d = to_decimal(text)
    places = minor_units(currency) if max_places is None else max_places
    if -d.as_tuple().exponent > places:
        raise MoneyError(f"Use at most {places} decimal places.")
    if d < 0 and not allow_negative:
        raise MoneyError("The amount cannot be negative.")
    if abs(d) >= Decimal(10) ** 13:
        raise MoneyError("The amount is too large.")
    return d


def parse_rate(text) -> Decimal:
    """A per-minute rate or fee: up to RATE_PLACES decimals, not negative."""
    return parse_amount(text, max_places=RATE_PLACES)


@lru_cache(maxsize=32)
def _locale(name: str) -> Locale:
    return Locale.parse(name)


def format_money(amount, currency: str = "USD", locale: str = "en_US") -> str:
    return _format_money(to_decimal(amount), (currency or "USD").upper(), str(locale))


def format_money_exact(amount, currency: str = "USD", locale: str = "en_US") -> str:
    """Like format_money, but with every decimal the amount really has (ledger amounts and
    balances keep sub-cent call charges: 1.2345 USD shows as $1.2345, 1.2000 as $1.20)."""
    return _format_money_exact(to_decimal(amount), (currency or "USD").upper(), str(locale))


@lru_cache(maxsize=4096)
def _format_money_exact(amount: Decimal, currency: str, locale: str) -> str:
    return format_currency(amount, currency, locale=_locale(locale), decimal_quantization=False)


@lru_cache(maxsize=4096)
def _format_money(amount: Decimal, currency: str, locale: str) -> str:
    # Babel's format_currency costs tens of microseconds a call and lists format hundreds of
    # amounts (most of them repeats: 0.00, the same credit limits); equal Decimals format alike.
    return format_currency(amount, currency, locale=_locale(locale))
