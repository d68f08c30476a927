import random
from decimal import Decimal

import pytest

from app.rating import index as index_module
from app.rating.cost import ShortCallCharge, Tariff, call_cost
from app.rating.index import PrefixIndex, clear_index_cache, dialled_digits, get_index


def tariff(prefix, rate="0.10", connect="0", first_block=1, increment=1, minimum="0", country="GB"):
    return Tariff(prefix, country, f"Destination {prefix}", Decimal(rate), Decimal(connect),
                  first_block, increment, Decimal(minimum))


SHEET = [tariff("44", "0.10"), tariff("447", "0.20"), tariff("4477", "0.30"), tariff("1", "0.01", country="US"),
         tariff("1876", "0.25", country="JM"), tariff("33", "0.05", country="FR")]


@pytest.fixture
def sheet():
    return PrefixIndex(SHEET)


@pytest.mark.parametrize("number, prefix", [
    ("447911123456", "447"), ("447711123456", "4477"), ("442071234567", "44"),
    ("18765551234", "1876"), ("12125551234", "1"), ("+447911123456", "447"),
    ("00447911123456", "447"), ("44", "44"), ("4", None), ("4912345", None),
])
def test_the_longest_matching_prefix_wins(sheet, number, prefix):
    found = sheet.lookup(number)
    assert (found.prefix if found else None) == prefix


@pytest.mark.parametrize("number", ["02071234567", "+0044123", "", "+", "00", "44 20 7123", "44-20", "abc",
                                    "٤٤١٢٣", "-44123", "4_4123"])
def test_a_number_that_is_not_e164_digits_has_no_route(sheet, number):
    assert dialled_digits(number) == "" or not number.isascii()
    assert sheet.lookup(number) is None


def test_rate_returns_the_call_cost_or_none_without_route(sheet):
    assert sheet.rate("+447911123456", 90, "USD") == Decimal("0.30")
    assert sheet.rate("999123", 90, "USD") is None


def test_one_prefix_twice_in_a_sheet_version_is_refused():
    with pytest.raises(ValueError, match="twice"):
        PrefixIndex([tariff("44"), tariff("44", "0.2")])


def test_an_empty_sheet_routes_nothing():
    result = PrefixIndex([]).rate_batch(["4420"], [10], "USD")
    assert result.tariff(0) is None and result.cost(0) is None and result.unrouted == 1


def test_a_batch_reports_per_call_tariffs_costs_and_the_total(sheet):
    result = sheet.rate_batch(["447911123456", "33123456789", "999", "+18765550000"], [60, 120, 60, 0], "USD")
    assert [t.prefix if t else None for t in map(result.tariff, range(4))] == ["447", "33", None, "1876"]
    assert result.costs() == [Decimal("0.20"), Decimal("0.10"), None, Decimal("0.00")]
    assert result.total() == Decimal("0.30") and result.unrouted == 1 and len(result) == 4


def test_a_batch_refuses_float_or_negative_durations_and_mismatched_lengths(sheet):
    with pytest.raises(TypeError):
        sheet.rate_batch(["4420"], [1.5], "USD")
    with pytest.raises(ValueError):
        sheet.rate_batch(["4420"], [-1], "USD")
    with pytest.raises(ValueError):
        sheet.rate_batch(["4420", "4421"], [1], "USD")


def random_sheet(rng, n=400):
    prefixes = set()
    while len(prefixes) < n:
        head = rng.choice("123456789")
        prefixes.add(head + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 6))))
    prefixes |= {"44", "440", "4400", "44000"}       # prefixes followed by zeros: the tricky case
    def rate():     # round rates make exact half-cent costs: the half-up rule is exercised
        return rng.choice([Decimal(rng.randint(0, 3_000_000)).scaleb(-6), Decimal("0.01"), Decimal("0.03")])
    return [Tariff(p, "", "x", rate(),
                   Decimal(rng.choice([0, 0, 1, 50_000, 123_456])).scaleb(-6),
                   rng.choice([0, 1, 6, 30, 60]), rng.choice([1, 6, 60]),
                   Decimal(rng.choice([0, 0, 10_000, 250_001])).scaleb(-6)) for p in sorted(prefixes)]


def random_number(rng, prefixes):
    kind = rng.random()
    if kind < 0.7:
        number = rng.choice(prefixes) + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 10)))
    elif kind < 0.8:
        number = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
    else:
        number = "".join(rng.choice("0123456789+ -a") for _ in range(rng.randint(0, 6)))
    return rng.choice(["", "", "+", "00", "0", "+0"]) + number


@pytest.mark.parametrize("seed, currency, clean", [(1, "USD", True), (2, "JPY", True), (3, "KWD", True),
                                                   (4, "USD", False), (5, "EUR", False)])
def test_rate_batch_charges_exactly_what_call_cost_charges_for_every_call(seed, currency, clean):
    rng = random.Random(seed)
    tariffs = random_sheet(rng)
    sheet = PrefixIndex(tariffs)
    prefixes = [t.prefix for t in tariffs]
    numbers = [random_number(rng, prefixes) for _ in range(4000)]
    if clean:                               # the numpy fast path needs a batch of clean strings
        numbers = [n for n in numbers if dialled_digits(n) and len(n) <= 18]
    durations = [rng.choice([0, 1, 7, 30, 31, rng.randint(0, 20_000), 30 * rng.randint(0, 99)]) for _ in numbers]
    short = ShortCallCharge(6, Decimal("0.015")) if seed % 2 else None

    result = sheet.rate_batch(numbers, durations, currency, short)

    for i, (number, duration) in enumerate(zip(numbers, durations)):
        found = sheet.lookup(number)
        expected = None if found is None else call_cost(duration, found, currency, short)
        assert result.tariff(i) is found, number
        got = result.cost(i)
        assert (got, str(got)) == (expected, str(expected)), (number, duration)


def test_without_numpy_the_batch_rates_one_by_one_with_the_same_result(sheet, monkeypatch):
    numbers, durations = ["447911123456", "+33123", "x", "18765550000"], [61, 5, 3, 0]
    fast = sheet.rate_batch(numbers, durations, "USD")
    monkeypatch.setattr(sheet, "_arrays", None)
    slow = sheet.rate_batch(numbers, durations, "USD")
    assert slow.costs() == fast.costs() and list(slow.tariff_index) == list(fast.tariff_index)


def test_amounts_too_large_for_int64_fall_back_to_exact_python_integers():
    sheet = PrefixIndex([tariff("44", rate="99999999.999999"), tariff("33", rate="0.1")])
    durations = [10 ** 12, 10 ** 19]                   # the second one is not even an int64
    result = sheet.rate_batch(["4420", "3312"], durations, "USD")
    assert result.costs() == [call_cost(d, t, "USD") for d, t in zip(durations, sheet.tariffs)]


def test_get_index_builds_once_per_sheet_version_and_a_new_version_replaces_the_old():
    clear_index_cache()
    loads = []

    def loader(rate):
        def load():
            loads.append(rate)
            return [tariff("44", rate)]
        return load

    first = get_index(7, 1, loader("0.10"))
    assert get_index(7, 1, loader("ignored")) is first
    second = get_index(7, 2, loader("0.20"))
    assert second.lookup("4420").rate_per_minute == Decimal("0.20")
    assert loads == ["0.10", "0.20"]
    assert (7, 1) not in index_module._cache
    clear_index_cache()


def test_the_index_cache_keeps_only_the_most_recently_used_sheets(monkeypatch):
    clear_index_cache()
    monkeypatch.setattr(index_module, "_CACHE_SIZE", 2)
    for sheet_id in (1, 2, 3):
        get_index(sheet_id, 1, lambda: [tariff("44")])
    assert list(index_module._cache) == [(2, 1), (3, 1)]
    clear_index_cache()


def test_a_number_shorter_than_the_longest_prefix_is_not_matched_to_a_longer_prefix_of_zeros():
    sheet = PrefixIndex([tariff("44"), tariff("4400"), tariff("440000", "0.3")])
    result = sheet.rate_batch(["440", "4400", "44000", "4400001"], [1, 1, 1, 1], "USD")
    assert [result.tariff(i).prefix for i in range(4)] == ["44", "4400", "4400", "440000"]


def test_the_vectorised_reading_of_numbers_agrees_with_dialled_digits(monkeypatch):
    pytest.importorskip("numpy")
    rng = random.Random(11)
    numbers = [rng.choice(["", "+", "00", "0", "000", "+0", "+00"]) +
               "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 15))) for _ in range(5000)]

    def not_one_by_one(number):
        raise AssertionError("a clean batch must take the vectorised path")
    monkeypatch.setattr(index_module, "dialled_digits", not_one_by_one)
    values, digits = index_module._number_keys(numbers)
    monkeypatch.undo()
    for number, value, count in zip(numbers, values.tolist(), digits.tolist()):
        expected = dialled_digits(number)
        assert count == len(expected), number
        if count:
            assert value == int(expected), number


def test_the_bucket_shortcut_finds_the_same_segment_as_a_binary_search():
    np = pytest.importorskip("numpy")
    rng = random.Random(5)
    sheet = PrefixIndex(random_sheet(rng, n=3000))
    segments = sheet._arrays["segments"]
    top = 10 ** segments.width
    keys = np.array([rng.randrange(top) for _ in range(20_000)] + segments.starts.tolist()
                    + (segments.starts - 1).tolist() + [0, top - 1], dtype=np.int64)
    keys = keys[(keys >= 0) & (keys < top)]            # a W-digit key, as numbers give
    expected = np.searchsorted(segments.starts, keys, side="right") - 1
    assert (segments.segment_of(keys) == expected).all()
