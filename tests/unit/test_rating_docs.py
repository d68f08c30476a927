"""Every worked example in docs/rating.md is checked here, read from the page itself."""
from decimal import Decimal
from pathlib import Path

import pytest

from app.rating.bundles import rate_call
from app.rating.cost import ShortCallCharge, Tariff, billed_seconds, call_cost
from app.rating.duration import max_call_seconds
from app.rating.index import PrefixIndex

DOC = Path(__file__).resolve().parents[2] / "docs" / "rating.md"
EXAMPLE_TARIFF = Tariff("44", "GB", "United Kingdom", Decimal("0.10"), Decimal("0.05"), 30, 6)


def doc_table(name: str) -> list[list[str]]:
    """Rows of the markdown table under `<!-- examples: name -->`."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- examples: {name} -->") + 3      # marker, header, separator
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_each_example_table_in_the_doc_has_rows():
    assert len(doc_table("cost")) >= 10
    assert len(doc_table("bundle")) >= 5
    assert len(doc_table("max-duration")) >= 6


@pytest.mark.parametrize("row", doc_table("cost"), ids=lambda r: f"{r[0]}s@{r[1]}{r[6]}")
def test_documented_call_costs_are_what_call_cost_charges(row):
    duration, rate, connect, blocks, minimum, short, currency, billed, cost, _why = row
    first_block, increment = map(int, blocks.split("/"))
    tariff = Tariff("44", "GB", "United Kingdom", Decimal(rate), Decimal(connect), first_block,
                    increment, Decimal(minimum))
    short_call = None
    if short != "–":
        threshold, surcharge = short.split(":")
        short_call = ShortCallCharge(int(threshold.removesuffix(" s")), Decimal(surcharge))
    assert billed_seconds(int(duration), first_block, increment) == int(billed)
    charged = call_cost(int(duration), tariff, currency, short_call)
    assert charged == Decimal(cost)
    assert str(charged) == cost                  # same number of decimals as the doc shows
    # the integer fast path the CDR writer rates with charges the same, to the same decimals
    (fast,) = PrefixIndex([tariff]).rate_batch(["442071234567"], [int(duration)], currency, short_call).costs()
    assert str(fast) == cost


@pytest.mark.parametrize("row", doc_table("bundle"), ids=lambda r: f"{r[0]}s-bundle{r[1]}")
def test_documented_bundle_splits_are_what_rate_call_gives(row):
    duration, left, bundle, charged, cost, _why = row
    rated = rate_call(int(duration), EXAMPLE_TARIFF, "USD", bundle_remaining_seconds=int(left))
    assert (rated.bundle_seconds, rated.charged_seconds, rated.cost) == (int(bundle), int(charged), Decimal(cost))


@pytest.mark.parametrize("row", doc_table("max-duration"), ids=lambda r: f"credit{r[0]}-bundle{r[1]}")
def test_documented_max_durations_are_what_max_call_seconds_gives(row):
    credit, left, seconds, _why = row
    assert max_call_seconds(Decimal(credit), EXAMPLE_TARIFF, "USD", bundle_seconds=int(left)) == int(seconds)


@pytest.mark.parametrize("row", doc_table("precision"), ids=lambda r: f"{r[0]}s@{r[1]}{r[5]}")
def test_documented_costs_at_each_call_charge_precision_are_what_every_path_charges(row):
    from app.money import call_charge_places

    duration, rate, connect, blocks, short, currency, *costs, _why = row
    first_block, increment = map(int, blocks.split("/"))
    tariff = Tariff("44", "GB", "x", Decimal(rate), Decimal(connect), first_block, increment)
    short_call = None
    if short != "–":
        threshold, surcharge = short.split(":")
        short_call = ShortCallCharge(int(threshold.removesuffix(" s")), Decimal(surcharge))
    for setting, cost in zip((2, 3, 4), costs):
        places = call_charge_places(setting, currency)
        assert str(call_cost(int(duration), tariff, currency, short_call, places=places)) == cost
        (fast,) = PrefixIndex([tariff]).rate_batch(["442071234567"], [int(duration)], currency, short_call,
                                                   places=places).costs()
        assert str(fast) == cost


@pytest.mark.parametrize("row", doc_table("precision-max-duration"), ids=lambda r: f"{r[0]}@{r[1]}")
def test_documented_max_durations_at_a_precision(row):
    credit, places, seconds, _why = row
    cheap = Tariff("44", "GB", "x", Decimal("0.005"))
    assert max_call_seconds(Decimal(credit), cheap, "USD", places=int(places), cap=3600) == int(seconds)
