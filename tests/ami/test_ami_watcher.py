"""The watcher end to end: fake Asterisk over TCP, real panoramisk Manager, real Redis."""
import asyncio
import time
from dataclasses import replace
from decimal import Decimal

from tests.ami.harness import FAST, SERVER, account, eventually

ONE_EURO_A_SECOND = Decimal("1.00")


def test_in_use_counts_follow_calls_per_account_and_extension(ami_world):
    async def scenario(w):
        a = w.call("1001", "100001")
        w.call("1002", "100001")
        w.call("2001", "100002")
        w.ami.new_channel("PJSIP/trunk-00000099", account="100001",   # B leg of the first call
                          linkedid=w.ami.channels[a]["Uniqueid"])
        await w.settled()
        assert await w.counts.accounts() == {"100001": 2, "100002": 1}
        assert await w.counts.extensions() == {"1001": 1, "1002": 1, "2001": 1, "trunk": 1}
        w.ami.hangup(a)
        await w.settled()
        assert await w.counts.account("100001") == 1
        assert await w.counts.of_server(SERVER, "extension") == {
            "1002": 1, "2001": 1, "trunk": 1}
    ami_world(scenario, accounts=[account("100001"), account("100002")])


def test_a_call_beyond_the_channel_limit_is_hung_up_with_cause_34(ami_world):
    async def scenario(w):
        first, second, third = (w.call(f"100{i}", "100001") for i in (1, 2, 3))
        hangup = await w.hangups_of(third)
        assert hangup["Cause"] == "34"
        await w.settled()
        assert [a["Channel"] for a in w.ami.actions("Hangup")] == [third]
        assert await w.counts.account("100001") == 2
        assert set(w.ami.channels) == {first, second}
    ami_world(scenario, accounts=[account("100001", max_channels=2)])


def test_calls_beyond_the_calls_per_second_limit_are_hung_up(ami_world):
    async def scenario(w):
        calls = [w.call(f"100{i}", "100001") for i in range(4)]
        await w.hangups_of(calls[3])
        await w.settled()
        assert [(a["Channel"], a["Cause"]) for a in w.ami.actions("Hangup")] == [(calls[3], "34")]
    ami_world(scenario, accounts=[account("100001", cps=3)])


def test_a_call_from_a_suspended_account_is_hung_up_with_cause_21_and_still_recorded(ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001")
        assert (await w.hangups_of(channel))["Cause"] == "21"
        await eventually(lambda: w.policy.accounts["100001"].cdrs, what="CDR")
        (record,) = w.policy.accounts["100001"].cdrs
        assert (record["refused"], record["disposition"], record["billsec"]) == (True, "FAILED", 0)
        assert await w.counts.account("100001") == 0
    ami_world(scenario, accounts=[account("100001", status="suspended")])


def test_a_call_to_a_country_not_opened_is_hung_up_but_an_opened_one_goes_through(ami_world):
    async def scenario(w):
        closed = w.call("1001", "100001", number="8613912345678")
        opened = w.call("1002", "100001", number="33142685300")
        assert (await w.hangups_of(closed))["Cause"] == "21"
        await w.settled()
        assert list(w.ami.channels) == [opened]
    ami_world(scenario, accounts=[account("100001", opened_prefixes=("33", "44"))])


def test_an_account_code_set_after_the_channel_started_is_checked_then(ami_world):
    async def scenario(w):
        name = "PJSIP/1001-00000001"
        w.ami.new_channel(name, exten="442071234567")
        await w.settled()
        assert w.ami.actions("Hangup") == []
        w.ami.set_account(name, "100001")
        assert (await w.hangups_of(name))["Cause"] == "21"
    ami_world(scenario, accounts=[account("100001", status="disabled")])


def test_two_calls_sharing_credit_are_both_cut_off_when_it_runs_out(ami_world):
    async def scenario(w):
        # 2.00 of credit, two calls at 1.00/s each: both must end 1 s after answer.
        calls = [w.call("1001", "100001"), w.call("1002", "100001")]
        await w.settled()
        answered = time.time()
        for name in calls:
            w.ami.answer(name)
        hangups = [await w.hangups_of(name, 3) for name in calls]
        for hangup in hangups:
            assert hangup["Cause"] == "16"
            assert 0.95 <= hangup.at - answered <= 1.15
        await eventually(lambda: len(w.policy.accounts["100001"].cdrs) == 2, what="2 CDRs")
        balance = w.policy.accounts["100001"].balance
        assert Decimal("-0.30") <= balance <= Decimal("0")   # overshoot: cut-off latency only
        assert w.watcher.cutoffs == 2
    ami_world(scenario, accounts=[account("100001", balance=Decimal("2.00"),
                                          price_per_second=ONE_EURO_A_SECOND)])


def test_when_one_of_two_calls_ends_the_other_is_cut_off_later(ami_world):
    async def scenario(w):
        # 2.00 at 2 x 1.00/s -> 1 s; the second call stops at 0.5 s (cost 0.50), so the first
        # call alone has 1.50 - 0.50 spent = 1.00 left at 1.00/s: cut off at 1.5 s.
        first, second = w.call("1001", "100001"), w.call("1002", "100001")
        await w.settled()
        answered = time.time()
        w.ami.answer(first)
        w.ami.answer(second)
        await asyncio.sleep(0.5)
        w.ami.hangup(second)
        hangup = await w.hangups_of(first, 3)
        assert 1.45 <= hangup.at - answered <= 1.65
        assert [a["Channel"] for a in w.ami.actions("Hangup")] == [first]
    ami_world(scenario, accounts=[account("100001", balance=Decimal("2.00"),
                                          price_per_second=ONE_EURO_A_SECOND)])


def test_a_top_up_during_a_call_extends_it(ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001")
        await w.settled()
        answered = time.time()
        w.ami.answer(channel)
        await asyncio.sleep(0.5)
        w.policy.top_up("100001", Decimal("1.00"))      # the ledger would commit this...
        await w.publish_balance_change("100001")        # ...then notify the watchers
        await asyncio.sleep(0.7)
        assert w.ami.actions("Hangup") == []            # the old deadline (1 s) has passed
        hangup = await w.hangups_of(channel, 3)
        assert 1.95 <= hangup.at - answered <= 2.15
    ami_world(scenario, accounts=[account("100001", balance=Decimal("1.00"),
                                          price_per_second=ONE_EURO_A_SECOND)])


def test_a_dropped_link_is_reconnected_and_reconciled_with_what_happened_meanwhile(ami_world):
    async def scenario(w):
        stays, vanishes = w.call("1001", "100001", answer=True), w.call("1002", "100001",
                                                                        answer=True)
        await w.settled()
        w.ami.drop_connections()
        await eventually(lambda: not w.link.up, what="link seen down")
        w.ami.hangup(vanishes, emit=False)                     # while nobody listens
        appears = "PJSIP/1003-000000aa"
        w.ami.new_channel(appears, account="100002", exten="442071234567", emit=False)
        w.ami.answer(appears, emit=False)
        await eventually(lambda: w.link.reconciliations == 2, what="second reconciliation")
        await w.settled()
        assert w.ami.logins == 2
        (record,) = w.policy.accounts["100001"].cdrs
        assert (record["channel"], record["estimated"]) == (vanishes, True)
        assert await w.counts.accounts() == {"100001": 1, "100002": 1}
        assert await w.counts.of_server(SERVER, "extension") == {"1001": 1, "1003": 1}
        w.ami.hangup(stays)
        await eventually(lambda: len(w.policy.accounts["100001"].cdrs) == 2, what="CDR")
    ami_world(scenario, accounts=[account("100001"), account("100002")])


def test_a_hung_link_is_dropped_by_the_watchdog_and_a_cutoff_due_meanwhile_follows_the_reconnect(
        ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001")
        await w.settled()
        w.ami.answer(channel)
        await w.settled()
        w.ami.hang()              # the deadline (~0.3 s away) falls while nobody answers
        hung = time.time()
        hangup = await w.ami.wait_for_action("Hangup", 3, Channel=channel)
        assert hangup.connection == 2 and w.ami.logins == 2
        assert hangup.at - hung <= 1.0       # watchdog 0.1 + 0.2 s, reconnect 0.05 s
        await eventually(lambda: not w.ami.channels, what="channel hung up")
    ami_world(scenario, accounts=[account("100001", balance=Decimal("0.30"),
                                          price_per_second=ONE_EURO_A_SECOND)])


def test_duplicate_and_out_of_order_events_give_one_cdr_per_call(ami_world):
    async def scenario(w):
        first, second = w.call("1001", "100001", answer=True), w.call("1002", "100001",
                                                                      answer=True)
        await asyncio.sleep(0.1)
        ended = w.ami.hangup(first, emit=False)
        w.ami.cdr(ended)                                        # Cdr before its Hangup
        w.ami.channels[first] = ended
        w.ami.hangup(first)
        w.ami.hangup(second, cdr=True)                          # Hangup, then Cdr...
        w.ami.cdr(ended)                                        # ...and replays of both
        w.ami.emit({"Event": "Hangup", "Channel": second,
                    "Uniqueid": ended["Uniqueid"], "Cause": "16"})
        w.ami.emit({"Event": "Hangup", "Channel": "PJSIP/9999-00000009",
                    "Uniqueid": "404.404", "Cause": "16"})      # never seen
        await w.settled()
        cdrs = w.policy.accounts["100001"].cdrs
        assert sorted(r["channel"] for r in cdrs) == [first, second]
        assert [r["source"] for r in cdrs] == ["cdr", "hangup"]
        assert await w.counts.account("100001") == 0
    ami_world(scenario, accounts=[account("100001")])


def test_first_use_is_recorded_once_with_the_first_call_start(ami_world):
    async def scenario(w):
        w.call("1001", "100001")
        await w.settled()
        started = w.link.tracker.calls_of("100001")[0].started
        w.call("1002", "100001")
        await w.settled()
        assert w.policy.accounts["100001"].first_used == started
    ami_world(scenario, accounts=[account("100001")])


def test_a_wrong_secret_is_retried_with_growing_delays_and_never_reconciles(ami_world):
    async def scenario(w):
        await asyncio.sleep(0.8)
        assert w.ami.logins == 0 and w.link.reconciliations == 0
        attempts = [a.at for a in w.ami.actions("Login")]
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert 3 <= len(attempts) <= 8
        assert gaps[0] < gaps[-1] <= 0.2 + 0.05                   # doubling, up to the ceiling
    ami_world(scenario, secret="wrong", wait_ready=False,
              settings=replace(FAST, reconnect_min=0.05, reconnect_max=0.2))


def test_a_switch_down_when_the_watcher_starts_is_reached_once_it_is_up(ami_world):
    async def scenario(w):
        port = w.ami.port
        await w.ami.stop()                 # before the watcher's first connection attempt
        await asyncio.sleep(0.4)
        assert w.link.logins == 0
        w.call("1001", "100001", answer=True)                  # goes unseen: nobody listens
        await w.ami.start(port)
        await eventually(lambda: w.link.reconciliations == 1, what="first reconciliation")
        await w.settled()
        assert await w.counts.account("100001") == 1           # found by CoreShowChannels
    ami_world(scenario, accounts=[account("100001")], wait_ready=False)


def test_a_cutoff_due_while_the_switch_is_unreachable_is_sent_once_it_is_back(ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001")
        await w.settled()
        w.ami.answer(channel)
        await w.settled()
        w.ami.refuse_connections = True
        w.ami.drop_connections()
        await asyncio.sleep(0.6)           # the deadline (~0.3 s away) falls in here
        assert w.ami.actions("Hangup") == [] and not w.link.up
        w.ami.refuse_connections = False
        hangup = await w.hangups_of(channel, 2)
        assert (hangup.connection, hangup["Cause"]) == (2, "16")
    ami_world(scenario, accounts=[account("100001", balance=Decimal("0.40"),
                                          price_per_second=ONE_EURO_A_SECOND)])


def test_calls_of_one_account_on_two_servers_share_its_credit_and_its_counts(ami_world):
    async def scenario(w):
        on_first, on_second = w.call("1001", "100001", on=0), w.call("2001", "100001", on=1)
        await w.settled()
        assert await w.counts.of_server("pbx1") == {"100001": 1}
        assert await w.counts.of_server("pbx2") == {"100001": 1}
        assert await w.counts.account("100001") == 2
        answered = time.time()
        w.amis[0].answer(on_first)
        w.amis[1].answer(on_second)
        for hangup in (await w.hangups_of(on_first, on=0), await w.hangups_of(on_second, on=1)):
            assert 0.95 <= hangup.at - answered <= 1.15
    ami_world(scenario, servers=2, accounts=[account("100001", balance=Decimal("2.00"),
                                                     price_per_second=ONE_EURO_A_SECOND)])


def test_the_channel_limit_counts_the_calls_on_every_server(ami_world):
    async def scenario(w):
        w.call("1001", "100001", on=0)
        await w.settled()
        second = w.call("2001", "100001", on=1)
        assert (await w.hangups_of(second, on=1))["Cause"] == "34"
        assert w.amis[0].actions("Hangup") == []
    ami_world(scenario, servers=2, accounts=[account("100001", max_channels=1)])


def test_a_call_still_up_after_its_cutoff_hangup_is_hung_up_again_after_the_retry_delay(
        ami_world):
    async def scenario(w):
        w.ami.ignore_hangups = True
        channel = w.call("1001", "100001", answer=True)
        first = await w.hangups_of(channel, 2)
        await eventually(lambda: len(w.ami.actions("Hangup")) == 2, timeout=2.5,
                         what="second Hangup")
        second = w.ami.actions("Hangup")[1]
        assert second["Channel"] == channel
        assert 1.0 <= second.at - first.at <= 1.2            # FAST.hangup_retry = 1.0 s
    ami_world(scenario, accounts=[account("100001", balance=Decimal("0.10"),
                                          price_per_second=ONE_EURO_A_SECOND)])


def test_a_call_whose_hangup_event_was_lost_ends_at_the_next_periodic_reconciliation(ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001", answer=True)
        await w.settled()
        w.ami.hangup(channel, emit=False)                   # the Hangup event never arrives
        await eventually(lambda: w.policy.accounts["100001"].cdrs, timeout=2, what="CDR")
        assert w.policy.accounts["100001"].cdrs[0]["estimated"] is True
        await w.settled()
        assert await w.counts.account("100001") == 0 and w.ami.logins == 1
    ami_world(scenario, accounts=[account("100001")],
              settings=replace(FAST, reconcile_every=0.5))


def test_a_call_answered_while_the_link_was_away_is_timed_from_the_switch_s_own_answer(ami_world):
    # Reconciliation reads CDR(answer,u) of each answered channel: the call's real answer time,
    # not a guess from the channel's age or the moment the link was lost.
    async def scenario(w):
        channel = w.call("1001", "100001")
        await w.settled()
        uid = w.ami.channels[channel]["Uniqueid"]
        w.ami.refuse_connections = True
        w.ami.drop_connections()
        await asyncio.sleep(0.3)
        w.ami.answer(channel, emit=False)
        answered = w.ami.channels[channel]["_answered"]
        await asyncio.sleep(0.3)
        w.ami.refuse_connections = False
        await eventually(lambda: w.link.reconciliations >= 2, timeout=3, what="reconciled after the reconnect")
        ch = w.link.tracker.channel(uid)
        assert abs(ch.answered - answered) < 1e-5 and ch.estimated is False   # microseconds, as sent
        assert w.ami.actions("Getvar")[-1]["Variable"] == "CDR(answer,u)"
    ami_world(scenario, accounts=[account("100001")])


def test_the_carrier_in_the_switch_s_cdr_reaches_the_record_held_for_it(ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001", answer=True)
        await w.settled()
        ch = w.ami.hangup(channel)
        await asyncio.sleep(0.1)
        w.ami.cdr(ch, Carrier="3")                      # CDR(carrier) via cdr_manager's [mappings]
        await eventually(lambda: w.policy.accounts["100001"].cdrs, timeout=2, what="CDR")
        (record,) = w.policy.accounts["100001"].cdrs
        assert (record["carrier"], record["source"]) == ("3", "cdr")
    ami_world(scenario, accounts=[account("100001")], settings=replace(FAST, cdr_wait=1.0))


def test_the_switch_s_billsec_wins_over_the_watcher_s_and_the_difference_is_kept(ami_world):
    async def scenario(w):
        channel = w.call("1001", "100001", answer=True)
        await w.settled()
        await asyncio.sleep(1.2)
        ch = w.ami.hangup(channel)                      # the watcher measures 1 s...
        await asyncio.sleep(0.1)
        ch["_answered"] -= 1.0                          # ...the switch bills 2 s
        w.ami.cdr(ch)
        await eventually(lambda: w.policy.accounts["100001"].cdrs, timeout=2, what="CDR")
        (record,) = w.policy.accounts["100001"].cdrs
        assert (record["billsec"], record["measured_billsec"], record["source"]) == (2, 1, "cdr")
    ami_world(scenario, accounts=[account("100001")], settings=replace(FAST, cdr_wait=1.0))
