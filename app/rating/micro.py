"""Exact integer form of the cost formula, for the paths that run per call at volume.

Amounts are counted in *ticks* of 1/(60 × 10^RATE_PLACES) of the currency unit: a rate of R
millionths per minute costs exactly R ticks per second, a connect fee of C millionths is
60·C ticks. Sums of ticks are exact, so rounding ticks half-up to the charge's unit (the
currency's minor unit, or 10^-places for a call charge precision of `places` decimals) gives
the very same amount as `cost.call_cost` (tests compare both on random calls at 2, 3 and 4).
"""
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache

from app.money import RATE_PLACES, minor_units, to_decimal

from .cost import ShortCallCharge, Tariff

MICRO = 10 ** RATE_PLACES
TICKS_PER_MICRO = 60


def to_micro(amount: Decimal) -> int:
    """Millionths of a unit; exact because tariffs hold at most RATE_PLACES decimals."""
    return int(amount.scaleb(RATE_PLACES))


class MinorUnits:
    """Rounding ticks to one unit of charge (half-up) and back to Decimal: the currency's minor
    unit, or 10^-places when a call charge precision is given (`places`, see
    money.call_charge_places). "Minor" below means that unit: 1/10,000 of a dollar at 4 places."""
    __slots__ = ("currency", "places", "ticks_per_minor", "_decimals")

    def __init__(self, currency: str, places: int | None = None):
        self.currency = currency
        self.places = minor_units(currency) if places is None else places
        if isinstance(self.places, bool) or not isinstance(self.places, int) or self.places < 0:
            raise ValueError("places must be a whole number of decimals ≥ 0.")
        if self.places > RATE_PLACES:
            raise ValueError(f"{currency} has more decimals than rate sheets keep.")
        self.ticks_per_minor = TICKS_PER_MICRO * 10 ** (RATE_PLACES - self.places)
        self._decimals: dict[int, Decimal] = {}

    def round(self, ticks: int) -> int:
        d = self.ticks_per_minor
        return (2 * ticks + d) // (2 * d)          # half-up for ticks >= 0, as money.quantize

    def to_decimal(self, minor: int) -> Decimal:
        # Call costs repeat (a few thousand distinct amounts in a million calls): a Decimal
        # is immutable, so each is made once (Decimal() and scaleb cost 0.4 µs a call).
        d = self._decimals.get(minor)
        if d is None:
            d = Decimal(minor).scaleb(-self.places)  # same digits and exponent as quantize()
            if len(self._decimals) < 100_000:
                self._decimals[minor] = d
        return d

    def floor(self, amount) -> int:
        """Whole minor units in an amount (credit 1.239 USD -> 123): never more than there is."""
        return int(to_decimal(amount).scaleb(self.places).to_integral_value(ROUND_FLOOR))


@lru_cache(maxsize=256)
def minor_units_of(currency: str, places: int | None = None) -> MinorUnits:
    return MinorUnits(currency, places)


@dataclass(frozen=True, slots=True)
class TariffTicks:
    """A Tariff in integers: what the index and the deadline search compute with."""
    first_block: int
    increment: int
    rate: int        # ticks per billed second (= millionths per minute)
    connect: int     # ticks
    minimum: int     # ticks

    @classmethod
    def of(cls, t: Tariff) -> "TariffTicks":
        return cls(t.first_block, t.increment, to_micro(t.rate_per_minute),
                   TICKS_PER_MICRO * to_micro(t.connect_fee), TICKS_PER_MICRO * to_micro(t.minimum_charge))

    def call(self, duration: int, short: "ShortTicks | None" = None) -> int:
        """Ticks of a call charged from its first second (cost.call_cost before rounding)."""
        if duration <= 0:
            return 0
        fb = self.first_block
        billed = fb + -(-(max(duration, fb) - fb) // self.increment) * self.increment
        ticks = max(self.connect + billed * self.rate, self.minimum)
        if short is not None and duration < short.threshold:
            ticks += short.ticks
        return ticks

    def after_bundle(self, seconds: int) -> int:
        """Ticks of the seconds after a bundle ran out (cost.increments_cost before rounding)."""
        return -(-seconds // self.increment) * self.increment * self.rate


@dataclass(frozen=True, slots=True)
class ShortTicks:
    threshold: int
    ticks: int

    @classmethod
    def of(cls, s: ShortCallCharge | None) -> "ShortTicks | None":
        return None if s is None else cls(s.threshold_seconds, TICKS_PER_MICRO * to_micro(s.surcharge))
