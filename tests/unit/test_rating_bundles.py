from decimal import Decimal

import pytest

from app.rating.bundles import CountriesAndMinutes, CountryNotOpened, rate_call, share_bundle, split_call
from app.rating.cost import ShortCallCharge, Tariff, call_cost

UK = Tariff("44", "GB", "United Kingdom", Decimal("0.10"), Decimal("0.05"), 30, 6, Decimal("0.02"))
SATELLITE = Tariff("881", "", "Satellite", Decimal("5"))
PLAN = CountriesAndMinutes({"GB": 100, "FR": 0})


def test_a_call_inside_the_bundle_uses_actual_seconds_and_is_free():
    assert split_call(47, UK, 600) == (47, 0)
    assert rate_call(47, UK, "USD", countries=PLAN, bundle_remaining_seconds=600).cost == Decimal("0.00")


def test_a_call_crossing_the_bundle_pays_the_rest_in_increments_without_connect_fee_or_minimum():
    rated = rate_call(100, UK, "USD", countries=PLAN, bundle_remaining_seconds=60)
    assert rated == (60, 42, Decimal("0.07"))


def test_a_call_starting_with_an_empty_bundle_is_rated_by_the_full_formula():
    short = ShortCallCharge(10, Decimal("0.01"))
    rated = rate_call(5, UK, "USD", countries=PLAN, bundle_remaining_seconds=0, short_call=short)
    assert rated == (0, 30, call_cost(5, UK, "USD", short))
    assert rated.cost == Decimal("0.11")                 # 0.05 + 0.05 + 0.01


def test_a_short_call_inside_the_bundle_pays_no_short_call_charge():
    rated = rate_call(5, UK, "USD", bundle_remaining_seconds=60, short_call=ShortCallCharge(10, Decimal("0.01")))
    assert rated.cost == Decimal("0.00")


def test_an_unanswered_call_uses_no_bundle():
    assert rate_call(0, UK, "USD", countries=PLAN, bundle_remaining_seconds=60) == (0, 0, Decimal("0.00"))


def test_a_call_to_a_country_the_plan_has_not_opened_is_refused():
    de = Tariff("49", "DE", "Germany", Decimal("0.02"))
    with pytest.raises(CountryNotOpened) as refused:
        rate_call(30, de, "USD", countries=PLAN)
    assert refused.value.country == "DE" and "49" in str(refused.value)


def test_a_non_geographic_destination_is_refused_unless_the_plan_opens_it():
    with pytest.raises(CountryNotOpened, match="non-geographic"):
        PLAN.require_opened(SATELLITE)
    CountriesAndMinutes({"": 0}).require_opened(SATELLITE)


def test_an_opened_country_without_minutes_is_charged_at_the_rate():
    fr = Tariff("33", "FR", "France", Decimal("0.06"))
    assert PLAN.is_opened("FR") and PLAN.free_seconds_per_period("FR") == 0
    assert rate_call(60, fr, "USD", countries=PLAN).cost == Decimal("0.06")


def test_without_a_countries_and_minutes_list_every_country_is_allowed():
    assert rate_call(60, SATELLITE, "USD").cost == Decimal("5.00")


def test_free_minutes_per_period_are_counted_in_seconds():
    assert PLAN.free_seconds_per_period("GB") == 6000
    with pytest.raises(ValueError):
        CountriesAndMinutes({"GB": -1})


def test_parallel_calls_to_one_country_share_its_bundle_oldest_first():
    assert share_bundle(100, 3) == [34, 33, 33]
    assert sum(share_bundle(7, 4)) == 7
    assert share_bundle(50, 0) == []
    assert share_bundle(-5, 2) == [0, 0]
