"""A decision's variables go to the switch in `EXEC MSet` commands (one round trip, not one per
variable). The values come back exactly as Asterisk reads them: res_agi's argument parsing,
then MSet's (tests/agi/client.py follows both from Asterisk's C sources)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.agi.client import agi_args, mset_pairs
from workers.agi.decide import Decision
from workers.agi.routes import MSET_CHARS, MSET_PAIRS, decision_variables, mset_commands

values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"), max_size=40)


def read_back(commands):
    got = []
    for command in commands:
        words = agi_args(command)
        assert words[:2] == ["EXEC", "MSet"] and len(words) == 3
        got += mset_pairs(words[2])
    return got


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=8))
def test_any_value_reaches_the_channel_as_it_was(vals):
    pairs = [(f"RL_X_{n}", v) for n, v in enumerate(vals)] + [("TIMEOUT(absolute)", "60")]
    assert read_back(mset_commands(pairs)) == pairs


def test_separators_quotes_and_brackets_in_a_value_do_not_split_it():
    pairs = [("RL_DIAL_1", 'PJSIP/44,1@a"b(c'), ("RL_DIAL_2", "x]y[z)\\"), ("CALLERID(num)", "+44 20")]
    (command,) = mset_commands(pairs)
    assert read_back([command]) == pairs


class Leg:
    def __init__(self, n):
        self.dial, self.carrier_id = f"PJSIP/4420712345{n:02d}@carrier-{n}", n


def test_a_long_carrier_list_is_split_into_commands_an_asterisk_line_holds():
    decision = Decision(True, "", "1001", "442071234567", 300, legs=tuple(Leg(n) for n in range(1, 41)),
                        caller_id="441611234567")
    commands = mset_commands(decision_variables(decision))
    assert len(commands) > 1
    for command in commands:
        assert len(command.encode()) < 2048 and len(mset_pairs(agi_args(command)[2])) <= MSET_PAIRS
        assert len(agi_args(command)[2]) <= MSET_CHARS
    got = dict(read_back(commands))
    assert got["RL_DIAL_COUNT"] == "40" and got["RL_DIAL_40"] == "PJSIP/442071234540@carrier-40"
    assert got["RL_CARRIER_17"] == "17" and got["TIMEOUT(absolute)"] == "300"
    assert read_back(commands)[-1] == ("RL_DECISION", "ALLOW")          # set last, after every leg


def test_an_allowed_call_with_five_carriers_is_one_command():
    decision = Decision(True, "", "1001", "442071234567", 300, legs=tuple(Leg(n) for n in range(1, 6)))
    assert len(mset_commands(decision_variables(decision))) == 1
