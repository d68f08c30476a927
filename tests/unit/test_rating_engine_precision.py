"""Call charge precision (issue 14): a call's cost is rounded once, to the reseller's 2, 3 or 4
decimal places, and every fast path gives the very amount `cost.call_cost` gives at that
precision: `PrefixIndex.rate_batch` (vectorised and one by one), `PrefixIndex.rate`, the
bundle rules, and the deadline engine (the AMI watcher's cut-off times)."""
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import money
from app.rating import index as index_module
from app.rating.bundles import rate_call
from app.rating.cost import ShortCallCharge, Tariff, call_cost, increments_cost
from app.rating.duration import max_call_seconds
from app.rating.index import PrefixIndex
from app.rating.micro import minor_units_of

PLACES = (2, 3, 4)
CURRENCIES = ("USD", "KWD", "JPY")


def rate_amounts(max_micros=2_000_000):
    """Rate-sheet amounts with up to 6 decimals, mostly small: sub-cent costs are the point."""
    return st.one_of(st.integers(0, 20_000), st.integers(0, max_micros)).map(lambda n: Decimal(n).scaleb(-6))


@st.composite
def tariffs(draw, prefix="44"):
    return Tariff(prefix, "GB", "x", draw(rate_amounts()), draw(st.sampled_from([Decimal(0), Decimal(0)]) | rate_amounts()),
                  draw(st.sampled_from([0, 1, 6, 30, 60])), draw(st.sampled_from([1, 1, 6, 30, 60])),
                  draw(st.sampled_from([Decimal(0)]) | rate_amounts(200_000)))


short_calls = st.none() | st.builds(ShortCallCharge, st.integers(1, 30), rate_amounts(50_000))
durations = st.one_of(st.integers(0, 90), st.integers(0, 20_000))


# -- the rule ---------------------------------------------------------------------------------
def test_the_examples_of_the_issue_and_of_docs_rating():
    cheap = Tariff("44", "GB", "x", Decimal("0.005"))
    assert call_cost(12, cheap, "USD", places=2) == Decimal("0.00")        # free at the cent
    assert call_cost(12, cheap, "USD", places=4) == Decimal("0.0010")      # 12 × 0.005 / 60
    assert call_cost(12, cheap, "USD") == Decimal("0.00")                  # no places: the minor unit
    uk = Tariff("44", "GB", "x", Decimal("0.0123"), Decimal("0.0150"), 30, 6)
    assert call_cost(47, uk, "USD", places=2) == Decimal("0.02")           # 0.015 + 48 × 0.0123/60 = 0.02484
    assert call_cost(47, uk, "USD", places=3) == Decimal("0.025")
    assert call_cost(47, uk, "USD", places=4) == Decimal("0.0248")


@pytest.mark.parametrize("setting, currency, places", [
    (2, "USD", 2), (3, "USD", 3), (4, "USD", 4), (None, "USD", 4),
    (2, "KWD", 3), (3, "KWD", 3), (4, "KWD", 4),           # never coarser than the currency
    (2, "JPY", 2), (4, "JPY", 4),                          # decimals of the yen
])
def test_call_charge_places_follow_the_setting_never_coarser_than_the_currency(setting, currency, places):
    assert money.call_charge_places(setting, currency) == places


@pytest.mark.parametrize("setting", [0, 1, 5, -2])
def test_a_setting_outside_two_to_four_places_is_refused(setting):
    with pytest.raises(ValueError, match="2 to 4"):
        money.call_charge_places(setting, "USD")


def test_money_quantize_rounds_half_up_to_the_places_asked():
    assert money.quantize(Decimal("0.00125"), "USD", 4) == Decimal("0.0013")
    assert money.quantize(Decimal("-0.00125"), "USD", 4) == Decimal("-0.0013")
    assert money.quantize(Decimal("0.00125"), "USD") == Decimal("0.00")
    assert str(money.quantize(0, "JPY", 4)) == "0.0000"


def test_exact_formatting_shows_the_decimals_a_ledger_amount_has():
    assert money.format_money_exact(Decimal("1.2345"), "USD") == "$1.2345"
    assert money.format_money_exact(Decimal("1.2000"), "USD") == "$1.20"
    assert money.format_money_exact(Decimal("-0.0010"), "USD") == "-$0.001"
    assert money.format_money_exact(Decimal("0.0042"), "JPY") == "¥0.0042"
    assert money.format_money_exact(Decimal("5.0000"), "KWD") == "KWD5.000"
    assert money.format_money(Decimal("1.2345"), "USD") == "$1.23"          # elsewhere: the currency's


# -- every path agrees with call_cost ---------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(tariffs(), durations, short_calls, st.sampled_from(PLACES), st.sampled_from(CURRENCIES))
def test_rate_and_rate_batch_charge_what_call_cost_charges_at_every_precision(tariff, duration, short, setting,
                                                                               currency):
    places = money.call_charge_places(setting, currency)
    index = PrefixIndex([tariff, Tariff("447", "GB", "mobile", Decimal("0.123457"))])
    expected = call_cost(duration, tariff, currency, short, places=places)
    assert -expected.as_tuple().exponent == places                      # rounded once, to the places
    assert index.rate("+4420", duration, currency, short, places=places) == expected
    batch = index.rate_batch(["4420", "+4420", "999"], [duration, duration, duration], currency, short,
                             places=places)
    assert batch.costs() == [expected, expected, None]
    assert batch.places == places


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(tariffs(), durations), min_size=1, max_size=30), short_calls, st.sampled_from(PLACES))
def test_the_vectorised_and_the_one_by_one_batch_agree_with_call_cost(monkeypatch, calls, short, places):
    tariffs_ = [Tariff(str(40 + i), "GB", "x", t.rate_per_minute, t.connect_fee, t.first_block, t.increment,
                       t.minimum_charge) for i, (t, _) in enumerate(calls)]
    index = PrefixIndex(tariffs_)
    numbers = [f"{t.prefix}123456" for t in tariffs_]
    durations_ = [d for _, d in calls]
    expected = [call_cost(d, t, "USD", short, places=places) for t, d in zip(tariffs_, durations_)]
    assert index.rate_batch(numbers, durations_, "USD", short, places=places).costs() == expected
    with monkeypatch.context() as m:
        m.setattr(index_module, "np", None)
        plain = PrefixIndex(tariffs_)
    assert plain._arrays is None
    assert plain.rate_batch(numbers, durations_, "USD", short, places=places).costs() == expected


@settings(max_examples=300, deadline=None)
@given(tariffs(), durations, st.integers(0, 400), short_calls, st.sampled_from(PLACES))
def test_bundle_calls_are_rounded_once_at_the_precision(tariff, duration, bundle, short, places):
    rated = rate_call(duration, tariff, "USD", bundle_remaining_seconds=bundle, short_call=short, places=places)
    assert -rated.cost.as_tuple().exponent == places
    if bundle == 0 or duration == 0:
        assert rated.cost == call_cost(duration, tariff, "USD", short, places=places)
    elif duration > bundle:
        assert rated.cost == increments_cost(duration - bundle, tariff, "USD", places=places)
    else:
        assert rated.cost == 0


@settings(max_examples=200, deadline=None)
@given(tariffs(), short_calls, st.sampled_from(PLACES), st.integers(-500, 40_000), st.sampled_from([0, 0, 25, 61]))
def test_the_deadline_engine_prices_calls_as_call_cost_at_every_precision(tariff, short, places, credit_units, bundle):
    """max_call_seconds at a precision: no moment up to the limit costs more than the credit
    (a credit with 4 decimals, as a balance keeps them), and one more second would."""
    credit = Decimal(credit_units).scaleb(-4)
    cap = 900
    limit = max_call_seconds(credit, tariff, "USD", bundle_seconds=bundle, short_call=short, cap=cap, places=places)

    def cost(d):
        return rate_call(d, tariff, "USD", bundle_remaining_seconds=bundle, short_call=short, places=places).cost

    assert all(cost(d) <= credit for d in range(1, limit + 1))
    if limit < cap:
        assert cost(limit + 1) > credit


def test_at_four_places_a_cheap_call_is_not_free_and_the_credit_lasts_accordingly():
    cheap = Tariff("44", "GB", "x", Decimal("0.005"))                  # 0.005/min, per second
    # 0.0010 of credit: at the cent every second "costs" 0.00 until 0.005 rounds up at 60 s…
    assert max_call_seconds(Decimal("0.0010"), cheap, "USD", places=2, cap=3600) == 59
    # …at 4 places it buys exactly 12 s (12 × 0.005 / 60 = 0.0010)
    assert max_call_seconds(Decimal("0.0010"), cheap, "USD", places=4, cap=3600) == 12


def test_minor_units_of_a_precision_round_ticks_as_quantize():
    mu = minor_units_of("USD", 4)
    assert (mu.places, mu.to_decimal(12345)) == (4, Decimal("1.2345"))
    with pytest.raises(ValueError):
        minor_units_of("USD", 7)
