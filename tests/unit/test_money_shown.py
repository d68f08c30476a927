"""Amounts on documents: the account's locale (Babel) and the decimals the reseller shows."""
from decimal import Decimal

import pytest

from app import money


@pytest.mark.parametrize("language,country,expected", [
    ("de", "AT", "de_AT"),
    ("fr", "CA", "fr_CA"),
    ("en", "GB", "en_GB"),
    ("pt", "", "pt"),
    ("xx", "DE", "en_US"),      # a language Babel does not know: the default
    ("", "", "en_US"),
    (None, None, "en_US"),
    ("12", "DE", "en_US"),      # not a code at all
])
def test_locale_for_an_account_is_its_language_and_country(language, country, expected):
    assert money.locale_for(language, country) == expected


@pytest.mark.parametrize("amount,currency,locale,decimals,expected", [
    ("1234.5", "EUR", "de_DE", None, "1.234,50\xa0€"),
    ("1234.5", "USD", "en_US", None, "$1,234.50"),
    ("1234.565", "USD", "fr_CA", None, "1\xa0234,57\xa0$\xa0US"),
    ("1000", "JPY", "ja_JP", None, "￥1,000"),          # no minor unit
    ("12.345", "KWD", "en_US", None, "KWD12.345"),      # three
    ("0.0042", "USD", "en_US", 4, "$0.0042"),           # sub-cent call charges shown
    ("1234.5", "EUR", "de_DE", 0, "1.235\xa0€"),        # half-up, not Babel's half-even
    ("-2.5", "GBP", "en_GB", 0, "-£3"),
    ("10", "USD", "en_US", 3, "$10.000"),
])
def test_format_money_shown_uses_the_locale_and_the_decimals_asked(amount, currency, locale, decimals, expected):
    assert money.format_money_shown(Decimal(amount), currency, locale, decimals) == expected


def test_decimals_shown_outside_0_to_4_are_refused():
    with pytest.raises(ValueError):
        money.format_money_shown(Decimal("1"), "USD", "en_US", 5)
    with pytest.raises(ValueError):
        money.format_money_shown(Decimal("1"), "USD", "en_US", -1)


def test_format_money_shown_refuses_floats_like_every_money_function():
    with pytest.raises(TypeError):
        money.format_money_shown(1.5, "USD")
