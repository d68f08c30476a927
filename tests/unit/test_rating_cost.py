import random
from decimal import Decimal

import pytest

from app.money import MoneyError
from app.rating.cost import ShortCallCharge, Tariff, billed_seconds, call_cost, increments_cost
from app.rating.micro import MinorUnits, ShortTicks, TariffTicks


def uk(rate="0.10", connect="0.05", first_block=30, increment=6, minimum="0"):
    return Tariff("44", "GB", "United Kingdom", Decimal(rate), Decimal(connect), first_block,
                  increment, Decimal(minimum))


def test_a_47_second_call_on_30_6_billing_is_billed_48_seconds_and_costs_13_cents():
    assert billed_seconds(47, 30, 6) == 48
    assert call_cost(47, uk(), "USD") == Decimal("0.13")


@pytest.mark.parametrize("duration, billed", [(0, 0), (1, 30), (30, 30), (31, 36), (36, 36), (37, 42)])
def test_billed_seconds_take_the_first_block_whole_then_round_up_to_the_increment(duration, billed):
    assert billed_seconds(duration, 30, 6) == billed


def test_an_unanswered_call_costs_nothing_even_with_a_connect_fee_and_minimum():
    assert call_cost(0, uk(minimum="0.50"), "USD") == Decimal("0.00")


def test_the_minimum_charge_is_a_floor_and_the_short_call_surcharge_comes_on_top():
    tariff = uk(rate="0.01", connect="0", first_block=1, increment=1, minimum="0.05")
    short = ShortCallCharge(10, Decimal("0.02"))
    assert call_cost(3, tariff, "USD") == Decimal("0.05")
    assert call_cost(3, tariff, "USD", short) == Decimal("0.07")
    assert call_cost(10, tariff, "USD", short) == Decimal("0.05")


def test_amounts_given_as_text_become_decimals():
    t = Tariff("44", "GB", "UK", "0.10", "0.05", 30, 6, "0")
    assert t.rate_per_minute == Decimal("0.10") and isinstance(t.connect_fee, Decimal)


def test_trailing_zeros_beyond_six_decimals_are_accepted_but_a_seventh_digit_is_not():
    assert uk(rate="0.1000000").rate_per_minute == Decimal("0.1")
    with pytest.raises(MoneyError, match="6 decimal places"):
        uk(rate="0.1234567")


@pytest.mark.parametrize("kwargs, message", [
    ({"prefix": "0044"}, "Prefix"),
    ({"prefix": "44a"}, "Prefix"),
    ({"prefix": ""}, "Prefix"),
    ({"prefix": "1" * 16}, "Prefix"),
    ({"country": "UKX"}, "Country"),
    ({"country": "gb"}, "Country"),
    ({"rate_per_minute": Decimal("-0.01")}, "negative"),
    ({"rate_per_minute": Decimal("100000000")}, "less than"),
    ({"rate_per_minute": Decimal("NaN")}, "not a number"),
    ({"increment": 0}, "Increment"),
    ({"first_block": -1}, "First block"),
    ({"first_block": 1.5}, "First block"),
])
def test_a_tariff_refuses_values_the_rating_engine_cannot_charge(kwargs, message):
    fields = dict(prefix="44", country="GB", description="UK", rate_per_minute=Decimal("0.1"))
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Tariff(**fields)


def test_floats_are_refused_because_they_have_already_lost_cents():
    with pytest.raises(TypeError):
        Tariff("44", "GB", "UK", 0.1)


@pytest.mark.parametrize("duration", [-1, 1.5, True])
def test_a_call_duration_must_be_whole_non_negative_seconds(duration):
    with pytest.raises((ValueError, TypeError)):
        call_cost(duration, uk(), "USD")


def test_seconds_after_a_bundle_pay_whole_increments_without_connect_fee_or_first_block():
    assert increments_cost(40, uk(), "USD") == Decimal("0.07")      # 42 s × 0.10/60
    assert increments_cost(0, uk(), "USD") == Decimal("0.00")


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD", "EUR"])
def test_integer_ticks_give_the_same_charge_as_the_decimal_formula(currency):
    rng = random.Random(f"ticks-{currency}")
    mu = MinorUnits(currency)
    for _ in range(3000):
        tariff = Tariff("44", "GB", "UK", Decimal(rng.randint(0, 2_000_000)).scaleb(-6),
                        Decimal(rng.choice([0, 1, 5000, 50_000, 123_457])).scaleb(-6),
                        rng.choice([0, 1, 6, 30, 60]), rng.choice([1, 6, 30, 60]),
                        Decimal(rng.choice([0, 0, 10_000, 333_333])).scaleb(-6))
        short = rng.choice([None, ShortCallCharge(rng.randint(1, 20), Decimal(rng.randint(0, 99_999)).scaleb(-6))])
        duration = rng.choice([0, 1, 2, 5, 29, 30, 31, rng.randint(0, 100_000)])
        expected = call_cost(duration, tariff, currency, short)
        got = mu.to_decimal(mu.round(TariffTicks.of(tariff).call(duration, ShortTicks.of(short))))
        assert (got, str(got)) == (expected, str(expected))
