"""What one call costs: the tariff record and the one documented formula.

    no answer or 0 s                      -> 0
    billed  = first_block + (max(duration, first_block) - first_block) rounded UP to increment
    cost    = max(connect_fee + billed × rate_per_minute / 60, minimum_charge)
            + short-call surcharge (answered calls shorter than the sheet's threshold)
    charged = money.quantize(cost, currency, places)   # rounded once, half-up
    places  = the reseller's call charge precision (money.call_charge_places: 2..4 decimals,
              never coarser than the currency); None: the currency's minor unit

This module is the readable reference. The fast paths (`index.PrefixIndex.rate_batch`,
`duration`) use exact integer arithmetic and are tested to give the same amount for every call.
"""
from dataclasses import dataclass
from decimal import Context, Decimal

from app.money import RATE_PLACES, ZERO, MoneyError, quantize, to_decimal

MAX_PREFIX_DIGITS = 15   # E.164: no dialled number (so no useful prefix) is longer

# Products and the /60 stay exact far beyond any real rate × duration; the only rounding of the
# amount is money.quantize. A private context so a caller's decimal settings cannot change it.
_EXACT = Context(prec=60)
_SIXTY = Decimal(60)
_RATE_UNIT = Decimal(1).scaleb(-RATE_PLACES)
_CHECK = Context(prec=60, traps=[])    # checks only: a huge or odd value gives NaN, not an exception
MAX_AMOUNT = Decimal(10) ** 8          # Rate's Numeric(14, 6) columns hold less than this


def _rate_amount(value, field: str) -> Decimal:
    """A rate-sheet amount: Decimal, not negative, at most RATE_PLACES decimals."""
    # 0.1000000 passes (trailing zeros); 0.1234567 is not an amount this system can charge
    if type(value) is Decimal and _CHECK.quantize(value, _RATE_UNIT) == value and 0 <= value < MAX_AMOUNT:
        return value
    d = to_decimal(value)
    if not d.is_finite():
        raise MoneyError(f"{field} is not a number.")
    if d < 0:
        raise MoneyError(f"{field} cannot be negative.")
    if d >= MAX_AMOUNT:
        raise MoneyError(f"{field} must be less than {MAX_AMOUNT:,}.")
    if _CHECK.quantize(d, _RATE_UNIT) != d:
        raise MoneyError(f"{field}: use at most {RATE_PLACES} decimal places.")
    return d


def _whole_seconds(value, field: str, minimum: int) -> int:
    if type(value) is not int:
        raise ValueError(f"{field} must be a whole number of seconds.")
    if value < minimum:
        raise ValueError(f"{field} must be at least {minimum} s.")
    return value


@dataclass(frozen=True, slots=True, init=False)
class Tariff:
    """One rate-sheet line: calls whose dialled digits start with `prefix` pay this."""
    prefix: str
    country: str                      # ISO 3166 alpha-2, '' for non-geographic codes
    description: str
    rate_per_minute: Decimal
    connect_fee: Decimal = ZERO
    first_block: int = 1              # seconds always billed once answered
    increment: int = 1                # seconds billed at a time after the first block
    minimum_charge: Decimal = ZERO
    rate_id: int | None = None        # the Rate row it came from, when it came from the DB

    def __init__(self, prefix: str, country: str, description: str, rate_per_minute,
                 connect_fee=ZERO, first_block: int = 1, increment: int = 1,
                 minimum_charge=ZERO, rate_id: int | None = None):
        # Written by hand to check and store in one pass: the generated __init__ of a frozen
        # dataclass costs twice as much, which a 170,000-row deck import feels.
        # A leading 0 is refused: no E.164 country code starts with 0, and the batch index
        # keys prefixes as integers.
        if not (type(prefix) is str and prefix.isdigit() and prefix.isascii() and prefix[0] != "0"
                and len(prefix) <= MAX_PREFIX_DIGITS):
            raise ValueError(f"Prefix “{prefix}” must be 1–{MAX_PREFIX_DIGITS} digits starting with 1–9.")
        if country and not (len(country) == 2 and country.isascii() and country.isalpha() and country.isupper()):
            raise ValueError(f"Country “{country}” must be an ISO alpha-2 code such as GB, or empty.")
        if type(first_block) is not int or first_block < 0:
            _whole_seconds(first_block, "First block", 0)
        if type(increment) is not int or increment < 1:
            _whole_seconds(increment, "Increment", 1)
        q = _CHECK.quantize
        if not (type(rate_per_minute) is type(connect_fee) is type(minimum_charge) is Decimal
                and q(rate_per_minute, _RATE_UNIT) == rate_per_minute and 0 <= rate_per_minute < MAX_AMOUNT
                and q(connect_fee, _RATE_UNIT) == connect_fee and 0 <= connect_fee < MAX_AMOUNT
                and q(minimum_charge, _RATE_UNIT) == minimum_charge and 0 <= minimum_charge < MAX_AMOUNT):
            rate_per_minute = _rate_amount(rate_per_minute, "Rate per minute")   # text, or why not
            connect_fee = _rate_amount(connect_fee, "Connect fee")
            minimum_charge = _rate_amount(minimum_charge, "Minimum charge")
        set_ = object.__setattr__
        set_(self, "prefix", prefix)
        set_(self, "country", country)
        set_(self, "description", description)
        set_(self, "rate_per_minute", rate_per_minute)
        set_(self, "connect_fee", connect_fee)
        set_(self, "first_block", first_block)
        set_(self, "increment", increment)
        set_(self, "minimum_charge", minimum_charge)
        set_(self, "rate_id", rate_id)


@dataclass(frozen=True, slots=True)
class ShortCallCharge:
    """A rate sheet's surcharge on answered calls shorter than `threshold_seconds`."""
    threshold_seconds: int
    surcharge: Decimal

    def __post_init__(self):
        _whole_seconds(self.threshold_seconds, "Short-call threshold", 1)
        object.__setattr__(self, "surcharge", _rate_amount(self.surcharge, "Short-call surcharge"))

    def applies_to(self, duration: int) -> bool:
        return 0 < duration < self.threshold_seconds


def check_duration(duration) -> int:
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise TypeError("A call duration is a whole number of seconds (int).")
    if duration < 0:
        raise ValueError("A call duration cannot be negative.")
    return duration


def billed_seconds(duration: int, first_block: int, increment: int) -> int:
    """Seconds the caller pays for: the first block in full, then whole increments (0 if unanswered)."""
    if duration <= 0:
        return 0
    after_first = max(duration, first_block) - first_block
    return first_block + -(-after_first // increment) * increment


def call_cost(duration: int, tariff: Tariff, currency: str,
              short_call: ShortCallCharge | None = None, *, places: int | None = None) -> Decimal:
    """The charge for one answered call of `duration` seconds, rounded once: to `places`
    decimals (the call charge precision), or to the currency's minor unit when None."""
    check_duration(duration)
    if duration == 0:
        return quantize(ZERO, currency, places)
    billed = billed_seconds(duration, tariff.first_block, tariff.increment)
    amount = _EXACT.add(tariff.connect_fee,
                        _EXACT.divide(_EXACT.multiply(Decimal(billed), tariff.rate_per_minute), _SIXTY))
    amount = max(amount, tariff.minimum_charge)
    if short_call is not None and short_call.applies_to(duration):
        amount = _EXACT.add(amount, short_call.surcharge)
    return quantize(amount, currency, places)


def increments_cost(seconds: int, tariff: Tariff, currency: str, *, places: int | None = None) -> Decimal:
    """Seconds charged after a bundle ran out: whole increments at the rate, no connect fee,
    no first block, no minimum (the call already started inside the bundle)."""
    check_duration(seconds)
    billed = -(-seconds // tariff.increment) * tariff.increment
    return quantize(_EXACT.divide(_EXACT.multiply(Decimal(billed), tariff.rate_per_minute), _SIXTY),
                    currency, places)
