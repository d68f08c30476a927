"""Point 1 of the AMI watcher's guarantees: a prepaid balance never ends below zero, whatever
the timing of answers and hang-ups, and a new call that cannot pay its first increment never
makes the calls already running overspend (the deadline engine, simulated as the watcher drives
it: recomputed at every answer, hang-up and cutoff, hangups landing a little late)."""
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.rating.cost import Tariff, call_cost
from app.rating.duration import LiveCall, elapsed_seconds, shared_deadlines

MARGIN = 0.25          # the policy's hangup margin (workers/ami/db_policy.HANGUP_MARGIN)
SIX_SIX = Tariff("44", "GB", "UK", Decimal("0.60"), first_block=6, increment=6)


def test_a_third_call_the_credit_cannot_cover_is_refused_and_the_first_two_keep_their_deadlines():
    # 0.15 of credit at 0.60/min billed 6/6: two calls can each pay one 6 s block (0.12), a
    # third cannot pay its first. Answered 0.6 s, 0.4 s and 0.01 s ago.
    now = 100.0
    answered = {"a": now - 0.6, "b": now - 0.4, "c": now - 0.01}
    calls = [LiveCall(k, t, elapsed_seconds(now, t, MARGIN), SIX_SIX) for k, t in answered.items()]
    got = {d.call_id: d.max_duration for d in shared_deadlines(Decimal("0.15"), calls, "USD")}
    assert got == {"a": 6, "b": 6, "c": 0}
    # What the watcher computed before: a call answered 10 ms ago counted as 1 s elapsed, all
    # three first blocks "spent" (0.18 > 0.15), so every call was hung up at once: -0.03.
    rounded_up = [LiveCall(c.call_id, c.answered_at, 1, SIX_SIX) for c in calls]
    assert [d.max_duration for d in shared_deadlines(Decimal("0.15"), rounded_up, "USD")] == [1, 1, 1]


TARIFFS = st.sampled_from([
    SIX_SIX,
    Tariff("44", "GB", "1.00 a second", Decimal("60.00")),
    Tariff("33", "FR", "per minute", Decimal("0.30"), first_block=60, increment=60),
    Tariff("49", "DE", "30/6 with a connect fee", Decimal("1.20"), Decimal("0.05"), 30, 6),
])


@st.composite
def scenarios(draw):
    credit = Decimal(draw(st.integers(0, 300))) / 100
    tariff = draw(TARIFFS)
    n = draw(st.integers(1, 5))
    calls = []
    for i in range(n):
        # answers bunched within a second (often the same millisecond), talks of 0-40 s
        answered = draw(st.sampled_from([0.0, 0.001, 0.01, 0.5, 0.999, 1.0])) + draw(st.integers(0, 3))
        talk = draw(st.one_of(st.sampled_from([0.0, 0.001, 0.5, 0.999, 1.0, 6.0, 5.999]),
                              st.floats(0, 40, allow_nan=False)))
        lag = draw(st.floats(0, 0.2, allow_nan=False))                  # a Hangup lands late
        calls.append((f"c{i}", answered, answered + talk, lag))
    return credit, tariff, calls


def simulate(credit, tariff, calls, places=None):
    """Event-driven: at every event the engine is run again on the balance left, as the watcher
    does; a call ends at its own hang-up or when its cutoff lands; its record is billed at once."""
    balance = credit
    answered = {k: a for k, a, _, _ in calls}
    natural = {k: h for k, _, h, _ in calls}
    lag = {k: g for k, _, _, g in calls}
    deadline: dict[str, float] = {}
    live: set[str] = set()
    ended: dict[str, float] = {}
    now = 0.0
    for _ in range(1000):
        candidates = [(a, "answer", k) for k, a in answered.items() if k not in live and k not in ended]
        candidates += [(min(natural[k], deadline.get(k, natural[k]) + lag[k]), "end", k) for k in live]
        if not candidates:
            break
        now, kind, key = min(candidates)
        if kind == "answer":
            live.add(key)
        else:
            live.discard(key)
            ended[key] = now
            balance -= call_cost(int(now - answered[key]), tariff, "USD", places=places)
        engine = [LiveCall(k, answered[k], elapsed_seconds(now, answered[k], MARGIN), tariff)
                  for k in sorted(live, key=lambda k: answered[k])]
        for d in shared_deadlines(balance, engine, "USD", places=places):
            deadline[d.call_id] = max(answered[d.call_id] + d.max_duration, now)
    return balance, ended


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_prepaid_balance_never_ends_below_zero_whatever_the_timing(scenario):
    credit, tariff, calls = scenario
    balance, ended = simulate(credit, tariff, calls)
    assert len(ended) == len(calls)
    assert balance >= 0, (credit, balance)


# Call charge precision (issue 14): the watcher and the CDR writer round at the reseller's
# 2, 3 or 4 places; the balance keeps every decimal, and still never ends below zero.
SUB_CENT = st.sampled_from([
    Tariff("44", "GB", "0.005 a minute, per second", Decimal("0.005")),
    Tariff("44", "GB", "odd rate 30/6 with a connect fee", Decimal("0.012345"), Decimal("0.0015"), 30, 6),
    Tariff("44", "GB", "1.00 a second", Decimal("60.00")),
    Tariff("44", "GB", "minimum charge", Decimal("0.0731"), first_block=1, increment=1, minimum_charge=Decimal("0.0099")),
])


@st.composite
def sub_cent_scenarios(draw):
    _, _, calls = draw(scenarios())
    credit = Decimal(draw(st.integers(0, 30_000))).scaleb(-4)      # a balance with 4 decimals
    return credit, draw(SUB_CENT), calls, draw(st.sampled_from([2, 3, 4]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sub_cent_scenarios())
def test_a_prepaid_balance_never_ends_below_zero_at_every_call_charge_precision(scenario):
    credit, tariff, calls, places = scenario
    balance, ended = simulate(credit, tariff, calls, places)
    assert len(ended) == len(calls)
    assert balance >= 0, (credit, balance, places)
