"""Countries & minutes: which countries a plan may call, and free minutes per billing period.

Rules (docs/rating.md, "Bundles"):
- a call to a country the plan has not opened is refused (`CountryNotOpened`);
- bundle seconds are used first, second for second (no rounding of the bundle side);
- a call wholly inside the bundle costs nothing: no connect fee, minimum or short-call charge;
- a call that outlasts the bundle pays for the rest in whole increments at the rate, without a
  second connect fee, first block or minimum: the call already started inside the bundle;
- a call that starts with the bundle empty is an ordinary call: the full formula.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from app.money import quantize

from .cost import ShortCallCharge, Tariff, billed_seconds, call_cost, check_duration, increments_cost


class CountryNotOpened(Exception):
    """The plan does not open this destination country: the call must not be connected."""

    def __init__(self, country: str, prefix: str = ""):
        self.country = country
        self.prefix = prefix
        where = country or "a non-geographic destination"
        super().__init__(f"Calls to {where}{f' (prefix {prefix})' if prefix else ''} are not opened on this plan.")


@dataclass(frozen=True)
class CountriesAndMinutes:
    """The plan's opened countries (ISO alpha-2) -> free minutes per period (0 = rate only)."""
    minutes: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        for country, m in self.minutes.items():
            if isinstance(m, bool) or not isinstance(m, int) or m < 0:
                raise ValueError(f"Free minutes for {country} must be a whole number ≥ 0.")

    def is_opened(self, country: str) -> bool:
        return country in self.minutes

    def require_opened(self, tariff: Tariff) -> None:
        if tariff.country not in self.minutes:
            raise CountryNotOpened(tariff.country, tariff.prefix)

    def free_seconds_per_period(self, country: str) -> int:
        return 60 * self.minutes.get(country, 0)


class CallSplit(NamedTuple):
    bundle_seconds: int     # actual seconds taken from the bundle
    charged_seconds: int    # seconds billed at the rate (first block/increments applied)


class RatedCall(NamedTuple):
    bundle_seconds: int
    charged_seconds: int
    cost: Decimal


def split_call(duration_s: int, tariff: Tariff, bundle_remaining_seconds: int) -> CallSplit:
    """Bundle first, then the rate: how many seconds each side of a call covers."""
    check_duration(duration_s)
    bundle = min(duration_s, max(bundle_remaining_seconds, 0))
    rest = duration_s - bundle
    if bundle == 0:
        return CallSplit(0, billed_seconds(rest, tariff.first_block, tariff.increment))
    return CallSplit(bundle, -(-rest // tariff.increment) * tariff.increment)


def rate_call(duration_s: int, tariff: Tariff, currency: str, *,
              countries: CountriesAndMinutes | None = None,
              bundle_remaining_seconds: int = 0,
              short_call: ShortCallCharge | None = None,
              places: int | None = None) -> RatedCall:
    """Rate one finished call (CDR): refuse unopened countries, use the bundle, charge the rest.

    `countries=None` means the account has no countries & minutes restriction. The call's
    total is rounded once, to `places` (the call charge precision; None: the minor unit).
    """
    if countries is not None:
        countries.require_opened(tariff)
    bundle, charged = split_call(duration_s, tariff, bundle_remaining_seconds)
    if bundle == 0:
        return RatedCall(0, charged, call_cost(duration_s, tariff, currency, short_call, places=places))
    if charged == 0:
        return RatedCall(bundle, 0, quantize(0, currency, places))
    return RatedCall(bundle, charged, increments_cost(duration_s - bundle, tariff, currency, places=places))


def share_bundle(remaining_seconds: int, live_calls: int) -> list[int]:
    """Split one country's remaining bundle between its live calls, oldest first.

    Parallel calls to one country drain the bundle together; equal shares (the odd seconds to
    the oldest calls) keep the sum within the bundle. Recompute when a call starts or ends.
    """
    if live_calls <= 0:
        return []
    base, extra = divmod(max(remaining_seconds, 0), live_calls)
    return [base + (1 if i < extra else 0) for i in range(live_calls)]
