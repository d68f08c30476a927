import io
import random
from datetime import date
from decimal import Decimal

import pytest

from app.rating.cost import Tariff
from app.rating.countries import country_for_prefix
from app.rating.deck import DeckRow, export_deck, parse_deck


def only_row(text, **kwargs):
    result = parse_deck(text, **kwargs)
    assert result.errors == [] and len(result.rows) == 1, result.errors
    return result.rows[0].tariff


def test_a_plain_comma_deck_becomes_tariffs_with_countries_derived_from_prefixes():
    result = parse_deck("Prefix,Destination,Rate\n44,United Kingdom,0.0123\n1876,Jamaica,0.2\n")
    assert result.errors == []
    uk, jamaica = result.tariffs
    assert (uk.prefix, uk.country, uk.description) == ("44", "GB", "United Kingdom")
    assert uk.rate_per_minute == Decimal("0.0123")
    assert (uk.first_block, uk.increment, uk.connect_fee, uk.minimum_charge) == (1, 1, 0, 0)
    assert jamaica.country == "JM"
    assert [r.line for r in result.rows] == [2, 3]


@pytest.mark.parametrize("header", [
    "Dial Code;Country Name;Price per minute", "code\tdescription\tRate/min",
    "DialCode,Destination,Rate (USD)", "Prefix;Country;PPM", "Dialing Code,Name,Per Minute",
])
def test_common_header_spellings_and_delimiters_are_understood(header):
    delimiter = ";" if ";" in header else "\t" if "\t" in header else ","
    text = header + "\n" + delimiter.join(["4420", "London", "0.015"]) + "\n"
    t = only_row(text)
    assert (t.prefix, t.description, t.rate_per_minute) == ("4420", "London", Decimal("0.015"))


def test_a_semicolon_deck_with_decimal_commas_bom_and_a_title_line_is_read():
    text = "\ufeffACME wholesale A-Z, valid from 1 March\n\nDial code;Destination;Rate;Connect fee;Billing\n" \
           "447;UK Mobile;0,0456;0,01;30/6\n"
    result = parse_deck(text.encode("utf-8"))
    assert result.delimiter == ";" and result.errors == []
    t = result.tariffs[0]
    assert (t.rate_per_minute, t.connect_fee, t.first_block, t.increment) == (Decimal("0.0456"), Decimal("0.01"), 30, 6)
    assert result.rows[0].line == 4
    assert result.columns == {"prefix": "Dial code", "description": "Destination", "rate": "Rate",
                              "connect_fee": "Connect fee", "billing": "Billing"}


def test_a_semicolon_deck_with_more_decimal_commas_than_semicolons_is_still_split_on_semicolons():
    result = parse_deck("Prefix;Rate;Connect fee;Minimum\n44;0,1;0,05;0,02\n33;0,2;0,01;0,03\n")
    assert result.delimiter == ";" and result.errors == []
    assert result.tariffs[0].minimum_charge == Decimal("0.02")


def test_excel_windows_bytes_that_are_not_utf8_are_read_as_cp1252():
    t = only_row("Prefix,Destination,Rate\n33,Réunion é,0.1\n".encode("cp1252"))
    assert t.description == "Réunion é"


@pytest.mark.parametrize("cells, expected", [
    ("60/60,,", (60, 60)), ("60,,", (60, 60)), ("30 / 6,,", (30, 6)), (",30,6", (30, 6)),
    ("60/60,30,", (30, 60)), (",,", (1, 1)), ("1-1,,", (1, 1)),
])
def test_blocks_come_from_a_combined_column_or_separate_ones_which_win(cells, expected):
    t = only_row(f"Prefix,Rate,Billing Increment,Initial,Next Increment\n44,0.1,{cells}\n")
    assert (t.first_block, t.increment) == expected


def test_deck_defaults_for_blocks_apply_when_the_deck_has_none():
    t = only_row("Prefix,Rate\n44,0.1\n", first_block=60, increment=60)
    assert (t.first_block, t.increment) == (60, 60)


@pytest.mark.parametrize("line, reason", [
    ("44a,UK,0.1,,", "prefix “44a” must contain digits only"),
    ("4.4E+11,UK,0.1,,", "digits only"),
    (",UK,0.1,,", "prefix is missing"),
    ("0207,London,0.1,,", "starts with 0"),
    ("1234567890123456,Long,0.1,,", "longer than 15 digits"),
    ("44,UK,-0.1,,", "rate -0.1 cannot be negative"),
    ("44,UK,abc,,", "rate “abc” is not a number"),
    ("44,UK,,,", "rate is missing"),
    ("44,UK,0.1234567,,", "more than 6 decimal places"),
    ("44,UK,0.1,30/0,", "increment is 0"),
    ("44,UK,0.1,x/6,", "not a whole number of seconds"),
    ("44,UK,1e20,,", "too large"),
    ("44," + "x" * 121 + ",0.1,,", "longer than 120 characters"),
    ("44,UK,0.1,999999/6,", "longer than a day"),
    ("44,UK,0.1,,UK", "not an ISO 3166 alpha-2 code (the United Kingdom is GB)"),
    ("44,UK,0.1,,GBR", "not an ISO 3166 alpha-2 code"),
])
def test_each_bad_line_is_reported_with_its_line_number_and_reason(line, reason):
    text = "Prefix,Destination,Rate,Billing,ISO\n33,France,0.05,,\n" + line + "\n49,Germany,0.02,,\n"
    result = parse_deck(text)
    assert [r.tariff.prefix for r in result.rows] == ["33", "49"]
    assert len(result.errors) == 1
    assert result.errors[0].line == 3
    assert reason in result.errors[0].reason
    assert str(result.errors[0]).startswith("line 3: ")


def test_a_duplicate_prefix_with_the_same_effective_date_is_an_error_but_another_date_is_fine():
    result = parse_deck("Prefix,Rate,Effective Date\n44,0.1,2025-01-01\n44,0.2,2025-02-01\n44,0.3,2025-01-01\n")
    assert [(r.tariff.rate_per_minute, r.effective_from) for r in result.rows] == [
        (Decimal("0.1"), date(2025, 1, 1)), (Decimal("0.2"), date(2025, 2, 1))]
    assert result.errors[0].line == 4 and "already on line 2" in result.errors[0].reason


@pytest.mark.parametrize("cell, day_first, expected", [
    ("2025-03-04", None, date(2025, 3, 4)), ("2025-03-04 00:00:00", None, date(2025, 3, 4)),
    ("2025/03/04", None, date(2025, 3, 4)), ("04.03.2025", None, date(2025, 3, 4)),
    ("25/03/2025", None, date(2025, 3, 25)), ("03/25/2025", None, date(2025, 3, 25)),
    ("04/03/2025", True, date(2025, 3, 4)), ("04/03/2025", False, date(2025, 4, 3)),
    ("", None, None),
])
def test_effective_dates_are_read_in_the_usual_unambiguous_forms(cell, day_first, expected):
    result = parse_deck(f"Prefix,Rate,Effective From\n44,0.1,{cell}\n", day_first=day_first)
    assert result.rows[0].effective_from == expected


@pytest.mark.parametrize("cell, reason", [("04/03/2025", "could be day/month or month/day"),
                                          ("2025-02-30", "not a real date"), ("next week", "not a date"),
                                          ("2025-03-04 13:00", "not a date")])
def test_an_ambiguous_or_impossible_effective_date_is_reported(cell, reason):
    result = parse_deck(f"Prefix,Rate,Effective From\n44,0.1,{cell}\n")
    assert result.rows == [] and reason in result.errors[0].reason


def test_a_deck_without_prefix_or_rate_columns_is_refused_as_a_whole():
    result = parse_deck("Country,Price list\nUK,cheap\n")
    assert result.rows == [] and result.errors[0].line == 1 and "prefix column" in result.errors[0].reason


def test_an_iso_column_overrides_the_derived_country_and_an_empty_cell_derives_it():
    result = parse_deck("Prefix,ISO,Rate\n44,gg,0.1\n447624,,0.2\n800,,0.3\n")
    assert [t.country for t in result.tariffs] == ["GG", "IM", ""]


def test_plus_and_double_zero_before_a_prefix_are_removed():
    result = parse_deck("Prefix,Rate\n+44,0.1\n0033,0.2\n")
    assert [t.prefix for t in result.tariffs] == ["44", "33"]


def test_thousands_separators_and_spreadsheet_integers_are_tolerated():
    t = only_row("Prefix;Rate;Connect fee;Minimum charge;First block\n44;1.234,5;1,234.5;0;30.0\n")
    assert (t.rate_per_minute, t.connect_fee, t.first_block) == (Decimal("1234.5"), Decimal("1234.5"), 30)


def test_blank_lines_and_short_rows_are_handled():
    result = parse_deck("Prefix,Rate,Connect fee\n\n44,0.1\n,,\n")
    assert [t.connect_fee for t in result.tariffs] == [0] and result.errors == []


def test_files_paths_and_text_streams_are_accepted(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_bytes(b"Prefix,Rate\n44,0.1\n")
    assert parse_deck(path).tariffs == parse_deck(io.BytesIO(path.read_bytes())).tariffs \
        == parse_deck(io.StringIO("Prefix,Rate\n44,0.1\n")).tariffs
    with pytest.raises(TypeError):
        parse_deck(42)


def random_rows(rng, n):
    rows, prefixes = [], set()
    while len(rows) < n:
        prefix = rng.choice("123456789") + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 7)))
        when = rng.choice([None, date(2025, 1, 1), date(2026, 7, 15)])
        if (prefix, when) in prefixes:
            continue
        prefixes.add((prefix, when))
        description = rng.choice(["Mobile", "=HYPERLINK(x)", "'quoted", "+Fixed", "-", "a, \"b\"\nc", "", "@x"])
        tariff = Tariff(prefix, rng.choice(["GB", "US", country_for_prefix(prefix)]),
                        description, Decimal(rng.randint(0, 10 ** 7)).scaleb(-rng.randint(0, 6)),
                        Decimal(rng.randint(0, 99)).scaleb(-2), rng.randint(0, 60), rng.randint(1, 60),
                        Decimal(rng.randint(0, 500)).scaleb(-3))
        rows.append(DeckRow(len(rows) + 2, tariff, when))
    return rows


def test_an_exported_deck_reads_back_to_the_same_rows_even_with_formula_like_descriptions():
    rows = random_rows(random.Random(3), 300)
    exported = export_deck(rows)
    again = parse_deck(exported)
    assert again.errors == []
    assert [(r.tariff, r.effective_from) for r in again.rows] == [(r.tariff, r.effective_from) for r in rows]
    assert "\n'=HYPERLINK(x)," in exported or ",'=HYPERLINK(x)," in exported


def test_tariffs_without_dates_export_and_reimport_too():
    tariffs = [Tariff("44", "GB", "UK", Decimal("0.0123"), Decimal("0.05"), 30, 6, Decimal("0.1"))]
    assert parse_deck(export_deck(tariffs)).tariffs == tariffs
