"""Calling-card access over AGI: PIN with GET DATA (three tries), then the destination."""
from tests.agi.client import call
from tests.ami.db_harness import calling_account, set_account

UK = "442071234567"


def prompts(session):
    return [c.split()[2] for c in session.commands if c.startswith("GET DATA")]


def test_the_pin_then_the_destination_decides_as_that_account(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="5.00")
    set_account(account.id, pin="482913")
    s = call(agi.port, "callingcard", keys=["111111", "482913", UK])
    assert s.commands[0] == "ANSWER"
    assert prompts(s) == ["prepaid-enter-pin-number"] * 2 + ["prepaid-enter-dest"]
    assert s.streamed == ["prepaid-invalid-pin"]
    assert (s.variables["RL_DECISION"], s.variables["RL_ACCOUNT"], s.variables["RL_MAX_SECONDS"]) == \
        ("ALLOW", account.account_number, "5")


def test_three_wrong_pins_hang_up(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="5.00")
    set_account(account.id, pin="482913")
    s = call(agi.port, "callingcard", keys=["1", "", "999999", "482913"])
    assert prompts(s) == ["prepaid-enter-pin-number"] * 3
    assert (s.variables["RL_DECISION"], s.variables["RL_CAUSE"]) == ("REFUSE", "invalid_pin") and s.hung_up


def test_the_card_accounts_checks_apply(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="0.10")
    set_account(account.id, pin="777001")
    s = call(agi.port, "callingcard", keys=["777001", UK])
    assert s.variables["RL_CAUSE"] == "no_credit" and s.streamed == ["prepaid-no-enough-credit"] and s.hung_up
