"""Tax computation (app/invoicing/taxes.py): order, compounding, rounding once per tax to the
currency's minor unit, and tax-inclusive amounts split exactly (a prepaid top-up)."""
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from app.conflicts import FieldError
from app.invoicing.taxes import TaxSpec, compute, multiplier, parse_rate, split_inclusive, total_of

D = Decimal
GST = TaxSpec("GST", D("5"), False, 1, 1)
PST = TaxSpec("PST", D("7"), False, 2, 2)
QST = TaxSpec("QST", D("9.975"), True, 2, 3)       # compound: on subtotal + GST


@pytest.mark.parametrize("subtotal, taxes, currency, expected", [
    # simple taxes: each on the subtotal, whatever the order
    ("100.00", [GST, PST], "USD", [("GST", "100.00", "5.00"), ("PST", "100.00", "7.00")]),
    ("100.00", [PST, GST], "USD", [("GST", "100.00", "5.00"), ("PST", "100.00", "7.00")]),
    # compound: on the subtotal plus the taxes before it (Quebec before 2013: 5% then 9.975% on 105)
    ("100.00", [QST, GST], "CAD", [("GST", "100.00", "5.00"), ("QST", "105.00", "10.47")]),
    # a compound tax first is simply on the subtotal
    ("100.00", [TaxSpec("C", D("10"), True, 1, 9), TaxSpec("S", D("10"), False, 2, 8)], "USD",
     [("C", "100.00", "10.00"), ("S", "100.00", "10.00")]),
    # two compounds chain
    ("200.00", [TaxSpec("A", D("10"), True, 1, 1), TaxSpec("B", D("10"), True, 2, 2)], "EUR",
     [("A", "200.00", "20.00"), ("B", "220.00", "22.00")]),
    # rounded once per tax, half up, to the minor unit: 0.125 -> 0.13, JPY to whole yen, KWD to 3 places
    ("2.50", [TaxSpec("T", D("5"), False, 1, 1)], "USD", [("T", "2.50", "0.13")]),
    ("999", [TaxSpec("T", D("8"), False, 1, 1)], "JPY", [("T", "999", "80")]),
    ("1.005", [TaxSpec("T", D("10"), False, 1, 1)], "KWD", [("T", "1.005", "0.101")]),
    # a credit note's negative subtotal: negative taxes, half away from zero
    ("-2.50", [TaxSpec("T", D("5"), False, 1, 1)], "USD", [("T", "-2.50", "-0.13")]),
    # the same position: by tax id
    ("10.00", [TaxSpec("Z", D("1"), False, 1, 7), TaxSpec("A", D("2"), True, 1, 3)], "USD",
     [("A", "10.00", "0.20"), ("Z", "10.00", "0.10")]),
    ("10.00", [], "USD", []),
])
def test_tax_table(subtotal, taxes, currency, expected):
    lines = compute(D(subtotal), taxes, currency)
    assert [(t.name, str(t.base), str(t.amount)) for t in lines] == expected
    assert [t.position for t in lines] == list(range(1, len(expected) + 1))


def test_multiplier_of_simple_and_compound_taxes():
    assert multiplier([GST, PST]) == D("1.12")
    assert multiplier([GST, QST]) == D("1.05") * D("1.09975")


@pytest.mark.parametrize("gross, taxes, currency, net, tax", [
    ("120.00", [TaxSpec("VAT", D("20"), False, 1, 1)], "GBP", "100.00", "20.00"),
    ("10.00", [TaxSpec("VAT", D("20"), False, 1, 1)], "GBP", "8.33", "1.67"),
    ("115.47", [GST, QST], "CAD", "100.00", "15.47"),
    ("50", [TaxSpec("T", D("10"), False, 1, 1)], "JPY", "45", "5"),
    ("25.00", [], "USD", "25.00", "0"),
])
def test_split_inclusive_examples(gross, taxes, currency, net, tax):
    n, lines = split_inclusive(D(gross), taxes, currency)
    assert (n, total_of(lines)) == (D(net), D(tax))
    assert n + total_of(lines) == D(gross)


rates = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
specs = st.lists(st.tuples(rates, st.booleans(), st.integers(1, 5)), max_size=4).map(
    lambda xs: [TaxSpec(f"T{i}", r, c, p, i + 1) for i, (r, c, p) in enumerate(xs)])


@settings(max_examples=300, deadline=None)
@given(gross=st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False),
       taxes=specs)
def test_split_inclusive_always_adds_up_to_the_gross(gross, taxes):
    """Never more, never less than what was paid: net + taxes == gross to the cent."""
    net, lines = split_inclusive(gross, taxes, "USD")
    assert net + total_of(lines) == gross
    assert net >= 0 and all(t.amount >= 0 for t in lines)
    # the taxes are those of the net, exactly, whenever a net exists for which they are
    if lines == compute(net, taxes, "USD"):
        assert all(t.amount == (t.base * t.rate / 100).quantize(D("0.01"), "ROUND_HALF_UP") for t in lines)


@settings(max_examples=300, deadline=None)
@given(subtotal=st.decimals(min_value=-100000, max_value=100000, places=2, allow_nan=False, allow_infinity=False),
       taxes=specs)
def test_compute_order_and_compounding(subtotal, taxes):
    lines = compute(subtotal, taxes, "EUR")
    ordered = sorted(taxes, key=lambda t: (t.position, t.tax_id))
    running = subtotal
    for spec, line in zip(ordered, lines):
        assert line.name == spec.name
        assert line.base == (running if spec.compound else subtotal)
        running += line.amount
    # a negated subtotal negates every tax (credit notes mirror their invoice)
    assert [t.amount for t in compute(-subtotal, taxes, "EUR")] == [-t.amount for t in lines]


@pytest.mark.parametrize("text, message", [
    ("", "Enter the rate"), ("abc", "is not a number"), ("-1", "from 0 to 100"), ("100.5", "from 0 to 100"),
    ("7.12345", "at most 4 decimal places"), ("NaN", "Enter the rate"),
])
def test_rate_refused_with_a_clear_message(text, message):
    with pytest.raises(FieldError) as e:
        parse_rate(text)
    assert e.value.field == "rate" and message in e.value.message


def test_rate_accepted():
    assert parse_rate("20") == D("20.0000")
    assert parse_rate(" 7.5 % ") == D("7.5000")
    assert parse_rate("9.9750") == D("9.9750")
    assert parse_rate("100") == D("100")
    assert parse_rate("0") == D("0")
