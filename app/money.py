"""The one money module: every amount is a Decimal, rounded once, by one rule.

Rule: amounts are rounded to the currency's minor unit (ISO 4217 via Babel), ROUND_HALF_UP,
exactly once, at the point an amount becomes a charge, credit or price (`quantize`).
Rates (per-minute prices) keep RATE_PLACES decimals and are never rounded to cents
on their own: only the resulting charge is.

Call charges are the one exception to "the minor unit": a call's cost is rounded once to the
reseller's *call charge precision* (Tenant.call_charge_places, 2 to 4 decimals, see
`call_charge_places`), as carriers bill, and balances and the ledger keep it. Money people pay
(credits, top-ups, DID prices, user charges, invoice lines) stays at the minor unit.

Every amount a person types has a maximum (MAX_AMOUNT, or a lower one the field gives) and
the message says it. Currency codes come from `currency_codes()`: the active ISO 4217 list
less what is not money a customer can be billed in (see NOT_TENDER).
"""
import copy
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.core import UnknownLocaleError
from babel.numbers import format_currency, get_currency_name, get_currency_precision, list_currencies

ZERO = Decimal("0")
RATE_PLACES = 6          # per-minute rates, connect fees in rate sheets
MONEY_SCALE = 4          # Numeric(18, 4) columns: room for 3-decimal currencies
RATE_SCALE = RATE_PLACES
CALL_PLACES_DEFAULT = 4  # a new reseller's call charge precision (VoIP carriers bill to 4 places)
CALL_PLACES_MIN, CALL_PLACES_MAX = 2, MONEY_SCALE    # the setting's range; columns hold 4 places
# The largest amount a person may type anywhere (a credit, an adjustment, a price, a limit): far
# above any real VoIP amount, even in currencies of many units to the dollar (VND, IDR), and far
# below what Numeric(18, 4) holds. Rates have their own, lower limit (app/rating/cost.MAX_AMOUNT).
MAX_AMOUNT = Decimal(10) ** 9
RATE_MAXIMUM = Decimal(10) ** 8   # Numeric(14, 6) rate columns (= app/rating/cost.MAX_AMOUNT)

# Codes of the active ISO 4217 list that are not money an account is billed in (decision):
# precious metals (XAU, XAG, XPD, XPT), bond-market units (XBA-XBD), IMF and other accounting
# units (XDR, XSU, XUA, XAD), the testing and "no currency" codes (XTS, XXX), and the fund codes
# that exist beside a tender (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW).
NOT_TENDER = frozenset({
    "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XAD", "XTS", "XXX",
    "BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW",
})


class MoneyError(ValueError):
    """A value that is not a valid amount; the message is fit for a form field."""


@lru_cache(maxsize=1)
def currency_codes() -> tuple[str, ...]:
    """The currency codes an account, rate sheet or reseller may use: ISO 4217's active list
    (pycountry) that Babel can format, less NOT_TENDER. Sorted."""
    import pycountry

    known = set(list_currencies())
    return tuple(sorted(c.alpha_3 for c in pycountry.currencies if c.alpha_3 in known and c.alpha_3 not in NOT_TENDER))


def currency_choices(current: str | None = None) -> list[tuple[str, str]]:
    """(code, "EUR · Euro") for a select; a record's `current` code stays listed even if it is
    no longer offered (so its form can still be saved unchanged)."""
    codes = list(currency_codes())
    if current and current not in codes:
        codes.append(current)
    return [(c, f"{c} · {get_currency_name(c, locale='en')}") for c in codes]


def check_currency(code) -> str:
    """The code upper-cased, or MoneyError if it is not a currency we bill in."""
    code = (code or "").strip().upper()
    if code not in currency_codes():
        raise MoneyError(f"“{code[:10]}” is not a currency we bill in; choose one from the list (ISO 4217).")
    return code


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


def parse_amount(text, currency: str = "USD", *, allow_negative=False, max_places=None,
                 maximum: Decimal = MAX_AMOUNT) -> Decimal:
    """Parse a typed amount for a form: clear message if it is not a valid amount, or if it
    is not below `maximum` (the message says the maximum)."""
    if isinstance(text, str) and _DECIMAL_COMMA.match(text.strip()):
        raise MoneyError(f"“{text.strip()[:20]}”: use a dot for decimals and no thousands dots, "
                         "e.g. 1000.50.")
    d = to_decimal(text)
    places = minor_units(currency) if max_places is None else max_places
    if -d.as_tuple().exponent > places:
        raise MoneyError(f"Use at most {places} decimal places.")
    if d < 0 and not allow_negative:
        raise MoneyError("The amount cannot be negative.")
    check_maximum(d, maximum)
    return d


def check_maximum(amount: Decimal, maximum: Decimal = MAX_AMOUNT) -> Decimal:
    if abs(amount) >= maximum:
        raise MoneyError(too_large(maximum))
    return amount


def too_large(maximum: Decimal = MAX_AMOUNT) -> str:
    return f"The amount is too large: it must be less than {maximum:,}."


def parse_rate(text) -> Decimal:
    """A per-minute rate or fee: up to RATE_PLACES decimals, not negative."""
    return parse_amount(text, max_places=RATE_PLACES, maximum=RATE_MAXIMUM)


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


# --- documents: an account's own locale, a chosen number of decimals ---------------------------

DEFAULT_LOCALE = "en_US"
DECIMALS_SHOWN_MAX = 4   # a document may show up to MONEY_SCALE decimals (what the columns keep)


def locale_for(language: str | None, country: str | None = None) -> str:
    """The Babel locale of an account: its language and country ("de", "AT" -> "de_AT"), its
    language alone when that pair is unknown ("de" -> "de"), else DEFAULT_LOCALE."""
    lang = (language or "").strip().replace("-", "_")
    region = (country or "").strip().upper()
    for candidate in ((f"{lang}_{region}" if lang and region and "_" not in lang else None), lang or None):
        if not candidate:
            continue
        try:
            return str(_locale(candidate))
        except (ValueError, UnknownLocaleError):   # not a locale code / one Babel does not know
            continue
    return DEFAULT_LOCALE


def format_money_shown(amount, currency: str = "USD", locale: str = DEFAULT_LOCALE,
                       decimals: int | None = None) -> str:
    """An amount on a document (invoice, statement, receipt): the currency's symbol and the
    locale's separators (Babel), with `decimals` decimals (None: the currency's minor unit).

    Fewer decimals than the amount has round it half-up for display only (the amount itself
    was rounded once already, by `quantize`); more decimals show sub-cent call charges."""
    currency = (currency or "USD").upper()
    places = minor_units(currency) if decimals is None else int(decimals)
    if not 0 <= places <= DECIMALS_SHOWN_MAX:
        raise ValueError(f"decimals shown must be 0 to {DECIMALS_SHOWN_MAX}")
    value = quantize(to_decimal(amount), currency, places=places)
    return _format_money_shown(value, currency, str(locale), places)


@lru_cache(maxsize=4096)
def _format_money_shown(amount: Decimal, currency: str, locale: str, places: int) -> str:
    loc = _locale(locale)
    pattern = copy.copy(loc.currency_formats["standard"])
    pattern.frac_prec = (places, places)
    return format_currency(amount, currency, format=pattern, locale=loc, currency_digits=False)
