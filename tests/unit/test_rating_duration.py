import random
from decimal import Decimal

import pytest

from app.rating.bundles import rate_call
from app.rating.cost import ShortCallCharge, Tariff
from app.rating.duration import MAX_CALL_SECONDS, LiveCall, max_call_seconds, shared_deadlines

UK = Tariff("44", "GB", "United Kingdom", Decimal("0.10"), Decimal("0.05"), 30, 6)
PER_MINUTE_50 = Tariff("33", "FR", "France", Decimal("0.50"), first_block=60, increment=60)
PER_SECOND_CENT = Tariff("49", "DE", "Germany", Decimal("0.60"))          # 0.01 a second


def cost(call_tariff, seconds, bundle=0, short=None):
    return rate_call(seconds, call_tariff, "USD", bundle_remaining_seconds=bundle, short_call=short).cost


def test_a_new_call_may_last_as_long_as_the_credit_pays_for_whole_blocks():
    assert max_call_seconds(Decimal("1.00"), UK, "USD") == 570
    assert cost(UK, 570) == Decimal("1.00") and cost(UK, 571) == Decimal("1.01")


def test_a_call_that_cannot_pay_its_first_block_gets_zero_seconds():
    assert max_call_seconds(Decimal("0.09"), UK, "USD") == 0


def test_a_free_rate_or_bundle_only_call_is_bounded_by_the_maximum_call_length():
    free = Tariff("800", "", "Freephone", Decimal("0"))
    assert max_call_seconds(Decimal("0"), free, "USD") == MAX_CALL_SECONDS
    assert max_call_seconds(Decimal("0"), UK, "USD", bundle_seconds=10 ** 6) == MAX_CALL_SECONDS
    assert max_call_seconds(Decimal("5"), UK, "USD", cap=90) == 90


def test_a_short_call_surcharge_cuts_the_call_while_hanging_up_early_would_overspend():
    short = ShortCallCharge(10, Decimal("0.20"))
    assert max_call_seconds(Decimal("0.25"), PER_SECOND_CENT, "USD", short_call=short) == 5
    assert max_call_seconds(Decimal("0.30"), PER_SECOND_CENT, "USD", short_call=short) == 30


@pytest.mark.parametrize("seed", range(6))
def test_no_moment_up_to_the_max_duration_costs_more_than_the_credit_and_one_more_second_would(seed):
    rng = random.Random(seed)
    for _ in range(40):
        tariff = Tariff("44", "GB", "x", Decimal(rng.randint(0, 200_000)).scaleb(-5),
                        Decimal(rng.choice([0, 0, 1, 5])).scaleb(-2), rng.choice([0, 1, 6, 30, 60]),
                        rng.choice([1, 6, 30, 60]), Decimal(rng.choice([0, 0, 3, 40])).scaleb(-2))
        short = rng.choice([None, ShortCallCharge(rng.randint(1, 40), Decimal(rng.randint(0, 30)).scaleb(-2))])
        credit = Decimal(rng.randint(-50, 400)).scaleb(-2) + Decimal(rng.choice([0, 0, 7])).scaleb(-4)
        bundle = rng.choice([0, 0, 25, 61])
        limit = max_call_seconds(credit, tariff, "USD", bundle_seconds=bundle, short_call=short, cap=900)
        assert all(cost(tariff, d, bundle, short) <= credit for d in range(1, limit + 1))
        if limit < 900:
            assert cost(tariff, limit + 1, bundle, short) > credit


def test_thirty_concurrent_calls_cannot_pass_on_one_unit_of_credit():
    calls = [LiveCall(f"call-{i}", answered_at=100.0, elapsed=0, tariff=PER_MINUTE_50) for i in range(30)]
    deadlines = shared_deadlines(Decimal("1.00"), calls, "USD")
    assert [d.hangup_in for d in deadlines] == [60, 60] + [0] * 28
    assert sum(cost(PER_MINUTE_50, d.max_duration) for d in deadlines) == Decimal("1.00")


def test_thirty_concurrent_per_second_calls_drain_one_unit_of_credit_together():
    calls = [LiveCall(i, i, 0, PER_SECOND_CENT) for i in range(30)]
    deadlines = shared_deadlines(Decimal("1.00"), calls, "USD")
    # 30 × 3 s × 0.01 = 0.90 together (4 s each would be 1.20); the 0.10 left buys one more
    # second for the ten oldest calls, so the whole unit is used and not a cent more.
    assert [d.hangup_in for d in deadlines] == [4] * 10 + [3] * 20
    assert sum(cost(PER_SECOND_CENT, d.max_duration) for d in deadlines) == Decimal("1.00")


def test_thirty_calls_started_one_second_apart_never_spend_more_than_the_credit():
    credit, talk = Decimal("1.00"), 600
    answered, ended, live, deadline_at = {}, {}, set(), {}

    def recompute(now):
        spent = sum(cost(UK, d) for d in ended.values())
        calls = [LiveCall(c, answered[c], now - answered[c], UK) for c in sorted(live)]
        for d in shared_deadlines(credit - spent, calls, "USD"):
            deadline_at[d.call_id] = now + d.hangup_in

    for now in range(0, 2000):
        if now < 30:
            answered[now] = now
            live.add(now)
            recompute(now)
        due = [c for c in live if deadline_at[c] <= now or now - answered[c] >= talk]
        for c in due:
            live.discard(c)
            ended[c] = now - answered[c]
        if due:
            recompute(now)

    assert len(ended) == 30
    assert sum(cost(UK, d) for d in ended.values()) <= credit
    assert sum(1 for d in ended.values() if d > 0) <= 10           # a first block costs 0.10


def test_older_calls_keep_their_place_when_a_new_call_cannot_be_afforded():
    old = LiveCall("old", answered_at=1.0, elapsed=40, tariff=UK)
    new = LiveCall("new", answered_at=2.0, elapsed=0, tariff=UK)
    first_block = cost(UK, 1)
    credit = cost(UK, 40) + Decimal("0.05")                    # the old call's next step, not a new first block
    assert first_block > Decimal("0.05")
    old_deadline, new_deadline = shared_deadlines(credit, [new, old], "USD")[::-1]
    assert new_deadline.hangup_in == 0
    assert old_deadline.hangup_in > 0 and cost(UK, old_deadline.max_duration) <= credit


def test_each_call_is_cut_at_the_end_of_the_block_it_has_paid_for():
    per_minute = Tariff("39", "IT", "Italy", Decimal("0.10"), first_block=60, increment=60)
    a, b = LiveCall("a", 0, 0, per_minute), LiveCall("b", 0, 0, PER_SECOND_CENT)
    deadlines = shared_deadlines(Decimal("1.00"), [a, b], "USD")
    assert [d.max_duration for d in deadlines] == [120, 80]    # at 80 s: 0.20 + 0.80; a's 2nd minute is paid
    assert cost(per_minute, 120) + cost(PER_SECOND_CENT, 80) == Decimal("1.00")


def test_a_call_in_its_bundle_needs_no_credit_until_the_bundle_runs_out():
    bundled = LiveCall("bundled", 0, 10, UK, bundle_seconds=120)
    paying = LiveCall("paying", 1, 0, UK)
    bundled_deadline, paying_deadline = shared_deadlines(Decimal("0.10"), [bundled, paying], "USD")
    assert paying_deadline.max_duration == 30
    assert bundled_deadline.max_duration == 120


def test_calls_over_the_maximum_length_or_on_a_spent_credit_are_hung_up_now():
    assert shared_deadlines(Decimal("5"), [LiveCall(1, 0, 100, UK)], "USD", cap=100)[0].hangup_in == 0
    assert shared_deadlines(Decimal("-1"), [LiveCall(1, 0, 5, UK)], "USD")[0] == (1, 0, 5)
    assert shared_deadlines(Decimal("1"), [], "USD") == []


def test_elapsed_seconds_must_be_whole_and_not_negative():
    with pytest.raises(ValueError):
        shared_deadlines(Decimal("1"), [LiveCall(1, 0, -1, UK)], "USD")
    with pytest.raises(ValueError):
        shared_deadlines(Decimal("1"), [LiveCall(1, 0, 1.5, UK)], "USD")


@pytest.mark.parametrize("seed", range(8))
def test_live_calls_hung_up_at_or_before_their_deadlines_never_cost_more_than_the_credit(seed):
    rng = random.Random(seed)
    for _ in range(25):
        short = rng.choice([None, ShortCallCharge(rng.randint(1, 20), Decimal(rng.randint(0, 20)).scaleb(-2))])
        calls = []
        for i in range(rng.randint(1, 5)):
            tariff = Tariff("44", "GB", "x", Decimal(rng.randint(0, 100_000)).scaleb(-5),
                            Decimal(rng.choice([0, 0, 2])).scaleb(-2), rng.choice([0, 1, 30, 60]),
                            rng.choice([1, 6, 60]), Decimal(rng.choice([0, 0, 15])).scaleb(-2))
            calls.append(LiveCall(i, rng.random(), rng.choice([0, 0, 1, 7, 45, 130]), tariff,
                                  rng.choice([0, 0, 20, 90])))
        credit = Decimal(rng.randint(0, 300)).scaleb(-2)

        def cost_of(call, seconds, short=short):
            return cost(call.tariff, seconds, call.bundle_seconds, short if call.bundle_seconds == 0 else None)

        if sum(cost_of(c, c.elapsed) for c in calls) > credit:
            continue                                   # already overspent before this recompute
        deadlines = shared_deadlines(credit, calls, "USD", short, cap=700)
        worst = Decimal(0)
        for call, deadline in zip(calls, deadlines):
            assert deadline.max_duration == call.elapsed + deadline.hangup_in
            end = deadline.max_duration
            worst += max((cost_of(call, d) for d in range(max(call.elapsed, 1), end + 1)), default=Decimal(0))
        assert worst <= credit
