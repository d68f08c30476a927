"""The call-state tracker, fed AMI event dicts directly (no network)."""
from datetime import datetime, timezone

import pytest

from workers.ami.calls import (CALL_ANSWERED, CALL_ENDED, CALL_STARTED, CDR_READY, CDR_SWITCH, CallTracker,
                               extension_of)

T0 = 1_800_000_000.0


def newchannel(uid, name="PJSIP/1001-00000001", account="100001", exten="442071234567",
               linkedid=None, state="4"):
    return {"Event": "Newchannel", "Channel": name, "ChannelState": state,
            "AccountCode": account, "Exten": exten, "Uniqueid": uid,
            "Linkedid": linkedid or uid}


def newstate(uid, state="6", name="PJSIP/1001-00000001"):
    return {"Event": "Newstate", "Channel": name, "ChannelState": state, "Uniqueid": uid}


def hangup(uid, cause="16", name="PJSIP/1001-00000001"):
    return {"Event": "Hangup", "Channel": name, "Uniqueid": uid, "Cause": cause,
            "Cause-txt": "Normal Clearing"}


def cdr(uid, account="100001", billsec="30"):
    return {"Event": "Cdr", "AccountCode": account, "Channel": "PJSIP/1001-00000001",
            "Destination": "442071234567", "StartTime": "2027-01-15 08:00:00",
            "AnswerTime": "2027-01-15 08:00:05", "EndTime": "2027-01-15 08:00:35",
            "Duration": "35", "BillableSeconds": billsec, "Disposition": "ANSWERED",
            "UniqueID": uid}


def kinds(happenings):
    return [(h.kind, h.account) for h in happenings]


def answered_call(tracker, uid="1.1"):
    tracker.feed(newchannel(uid), T0)
    tracker.admit(uid)
    tracker.feed(newstate(uid), T0 + 5)


@pytest.mark.parametrize("name, extension", [
    ("PJSIP/1001-00000001", "1001"),
    ("SIP/acme-trunk-0000abcd", "acme-trunk"),
    ("PJSIP/100001_201-0000000a", "100001_201"),
    ("Local/442071234567@outbound-00000001;1", ""),
    ("DAHDI/1-1", "1"),
])
def test_the_extension_is_the_endpoint_in_the_channel_name(name, extension):
    assert extension_of(name) == extension


def test_a_new_channel_with_an_account_code_starts_a_call_that_counts_once_admitted():
    tracker = CallTracker("pbx1")
    out = tracker.feed(newchannel("1.1"), T0)
    assert kinds(out) == [(CALL_STARTED, "100001")]
    assert tracker.account_count("100001") == 0          # pending admission
    assert [c.uniqueid for c in tracker.calls_of("100001")] == ["1.1"]
    assert tracker.admit("1.1") is True
    assert tracker.account_count("100001") == 1
    assert tracker.extension_count("1001") == 1
    assert tracker.take_dirty() == ({"100001"}, {"1001"})


def test_an_account_code_set_later_starts_the_call_then():
    tracker = CallTracker()
    assert tracker.feed(newchannel("1.1", account=""), T0) == []
    out = tracker.feed({"Event": "NewAccountCode", "Channel": "PJSIP/1001-00000001",
                        "Uniqueid": "1.1", "AccountCode": "100002", "OldAccountCode": ""}, T0 + 1)
    assert kinds(out) == [(CALL_STARTED, "100002")]
    assert tracker.channel("1.1").account == "100002"


def test_a_call_moved_to_another_account_ends_for_the_first_and_starts_for_the_second():
    tracker = CallTracker()
    answered_call(tracker)
    out = tracker.feed({"Event": "NewAccountCode", "Uniqueid": "1.1",
                        "AccountCode": "100002"}, T0 + 6)
    assert kinds(out) == [(CALL_ENDED, "100001"), (CALL_STARTED, "100002"),
                          (CALL_ANSWERED, "100002")]
    assert tracker.account_counts() == {}  # the new account's admission is pending


def test_the_b_leg_inheriting_the_account_code_does_not_count_as_a_second_call():
    tracker = CallTracker()
    tracker.feed(newchannel("1.1"), T0)
    tracker.admit("1.1")
    out = tracker.feed(newchannel("1.2", name="PJSIP/trunk-00000002", linkedid="1.1"), T0 + 1)
    assert out == []
    assert tracker.account_count("100001") == 1
    assert tracker.extension_counts() == {"1001": 1, "trunk": 1}
    assert tracker.feed(hangup("1.2", name="PJSIP/trunk-00000002"), T0 + 9) == []
    assert tracker.extension_counts() == {"1001": 1}


def test_the_answer_time_is_when_the_channel_state_became_up():
    tracker = CallTracker()
    tracker.feed(newchannel("1.1"), T0)
    assert kinds(tracker.feed(newstate("1.1", "5"), T0 + 1)) == []
    assert kinds(tracker.feed(newstate("1.1", "6"), T0 + 4)) == [(CALL_ANSWERED, "100001")]
    assert tracker.feed(newstate("1.1", "6"), T0 + 7) == []  # duplicate: still answered at +4
    assert tracker.channel("1.1").answered == T0 + 4


def test_a_hangup_gives_the_call_end_and_one_cdr_record_with_billed_seconds():
    tracker = CallTracker("pbx1")
    answered_call(tracker)
    out = tracker.feed(hangup("1.1"), T0 + 35.9)
    assert kinds(out) == [(CALL_ENDED, "100001"), (CDR_READY, "100001")]
    record = out[1].record
    assert record == {
        "server": "pbx1", "uniqueid": "1.1", "linkedid": "1.1",
        "channel": "PJSIP/1001-00000001", "accountcode": "100001", "extension": "1001",
        "destination": "442071234567",
        "start": datetime.fromtimestamp(T0, timezone.utc),
        "answer": datetime.fromtimestamp(T0 + 5, timezone.utc),
        "end": datetime.fromtimestamp(T0 + 35.9, timezone.utc),
        "duration": 35, "billsec": 30, "disposition": "ANSWERED", "cause": 16,
        "refused": False, "estimated": False, "source": "hangup",
    }
    assert tracker.account_count("100001") == 0
    assert tracker.extension_counts() == {}


@pytest.mark.parametrize("cause, disposition", [("17", "BUSY"), ("19", "NO ANSWER"),
                                                ("34", "CONGESTION"), ("1", "FAILED")])
def test_an_unanswered_call_gets_a_disposition_from_its_hangup_cause(cause, disposition):
    tracker = CallTracker()
    tracker.feed(newchannel("1.1"), T0)
    record = tracker.feed(hangup("1.1", cause), T0 + 10)[1].record
    assert (record["disposition"], record["billsec"], record["answer"]) == (disposition, 0, None)


@pytest.mark.parametrize("order", [
    ["cdr", "hangup"], ["hangup", "cdr"], ["cdr", "cdr", "hangup", "hangup"],
    ["hangup", "hangup", "cdr", "cdr"], ["cdr", "hangup", "cdr"],
])
def test_a_finished_call_gives_exactly_one_cdr_whatever_the_order_and_duplicates(order):
    tracker = CallTracker()
    answered_call(tracker)
    events = {"cdr": cdr("1.1"), "hangup": hangup("1.1")}
    happenings = [h for name in order for h in tracker.feed(events[name], T0 + 35)]
    assert [h.kind for h in happenings].count(CDR_READY) == 1
    assert [h.kind for h in happenings].count(CALL_ENDED) == 1
    record = next(h.record for h in happenings if h.kind == CDR_READY)
    assert (record["uniqueid"], record["billsec"]) == ("1.1", 30)
    assert record["source"] == order[0]


def test_a_hangup_for_an_unknown_channel_is_ignored_and_a_late_newchannel_cannot_revive_it():
    tracker = CallTracker()
    assert tracker.feed(hangup("9.9"), T0) == []
    assert tracker.feed(newchannel("9.9"), T0 + 1) == []
    assert tracker.channel("9.9") is None
    assert tracker.account_counts() == {} and tracker.extension_counts() == {}


def test_a_duplicate_newchannel_does_not_start_the_call_twice():
    tracker = CallTracker()
    tracker.feed(newchannel("1.1"), T0)
    assert tracker.feed(newchannel("1.1"), T0 + 1) == []
    assert tracker.extension_count("1001") == 1


def test_the_destination_comes_from_exten_or_else_from_dialbegin():
    tracker = CallTracker()
    tracker.feed(newchannel("1.1", exten="s"), T0)
    assert tracker.channel("1.1").destination == ""
    tracker.feed({"Event": "DialBegin", "Channel": "PJSIP/1001-00000001", "Uniqueid": "1.1",
                  "DestExten": "33142685300", "DestChannel": "PJSIP/trunk-00000002"}, T0 + 1)
    assert tracker.channel("1.1").destination == "33142685300"


def test_a_refused_call_stops_counting_but_still_gives_its_cdr():
    tracker = CallTracker()
    tracker.feed(newchannel("1.1"), T0)
    tracker.admit("1.1")
    assert tracker.refuse("1.1") is True
    assert tracker.account_count("100001") == 0 and tracker.calls_of("100001") == []
    out = tracker.feed(hangup("1.1", "21"), T0 + 0.1)
    assert kinds(out) == [(CALL_ENDED, "100001"), (CDR_READY, "100001")]
    assert (out[1].record["refused"], out[1].record["disposition"]) == (True, "FAILED")


def test_a_cdr_for_a_channel_never_seen_gives_a_record_from_its_own_fields():
    tracker = CallTracker("pbx1", cdr_timezone="Europe/Paris")
    (happening,) = tracker.feed(cdr("7.7", billsec="30"), T0)
    record = happening.record
    assert record["answer"] == datetime(2027, 1, 15, 7, 0, 5, tzinfo=timezone.utc)  # UTC+1
    assert (record["billsec"], record["disposition"]) == (30, "ANSWERED")
    assert record["extension"] == "1001"
    assert tracker.feed(cdr("7.7"), T0 + 1) == []


def test_a_cdr_of_a_leg_billed_through_another_channel_is_ignored():
    tracker = CallTracker()
    tracker.feed(newchannel("1.1"), T0)
    tracker.feed(newchannel("1.2", name="PJSIP/trunk-00000002", linkedid="1.1"), T0)
    assert tracker.feed(cdr("1.2"), T0 + 5) == []


def snapshot_item(uid, name, state="6", duration="00:00:20", account="100001"):
    return {"Event": "CoreShowChannel", "Channel": name, "ChannelState": state,
            "AccountCode": account, "Exten": "442071234567", "Uniqueid": uid,
            "Linkedid": uid, "Duration": duration}


def test_reconciliation_ends_vanished_calls_and_starts_calls_it_did_not_know():
    tracker = CallTracker()
    answered_call(tracker, "1.1")                       # will vanish
    tracker.feed(newchannel("1.2", name="PJSIP/1002-00000002"), T0)  # rang, got answered unseen
    tracker.admit("1.2")
    asked_at = tracker.seq
    out = tracker.reconcile([snapshot_item("1.2", "PJSIP/1002-00000002"),
                             snapshot_item("1.3", "PJSIP/1003-00000003")],
                            now=T0 + 60, asked_at=asked_at, lost_at=T0 + 30)
    assert kinds(out) == [(CALL_ENDED, "100001"), (CDR_READY, "100001"),
                          (CALL_ANSWERED, "100001"),                          # 1.2
                          (CALL_STARTED, "100001"), (CALL_ANSWERED, "100001")]  # 1.3
    ended = out[1].record
    assert (ended["uniqueid"], ended["estimated"], ended["billsec"]) == ("1.1", True, 55)
    assert tracker.channel("1.2").answered == T0 + 30    # answered at the latest when lost
    assert tracker.channel("1.3").started == T0 + 40     # now - Duration
    assert tracker.channel("1.3").answered == T0 + 40
    assert tracker.extension_counts() == {"1002": 1, "1003": 1}


def test_reconciliation_keeps_channels_born_after_the_snapshot_was_asked_for():
    tracker = CallTracker()
    asked_at = tracker.seq
    tracker.feed(newchannel("2.1"), T0)                 # arrives while the list is on its way
    assert tracker.reconcile([], now=T0 + 1, asked_at=asked_at) == []
    assert tracker.channel("2.1") is not None


def test_reconciliation_does_not_revive_a_channel_that_hung_up_during_the_snapshot():
    tracker = CallTracker()
    answered_call(tracker, "3.1")
    asked_at = tracker.seq
    tracker.feed(hangup("3.1"), T0 + 10)                # after the snapshot was taken
    assert tracker.reconcile([snapshot_item("3.1", "PJSIP/1001-00000001")],
                             now=T0 + 11, asked_at=asked_at) == []
    assert tracker.channel("3.1") is None


def test_the_cdr_of_a_channel_never_seen_still_bills_it_when_its_hangup_came_first():
    # Asterisk sends the Hangup, then the Cdr. A channel the tracker never saw (it started while
    # the link was away) must be billed from its Cdr, not dropped as "ended without a bill".
    tracker = CallTracker("pbx1")
    assert tracker.feed(hangup("8.8"), T0) == []
    (happening,) = tracker.feed(cdr("8.8", billsec="15"), T0 + 0.01)
    assert happening.kind == CDR_READY
    assert (happening.record["billsec"], happening.record["disposition"]) == (15, "ANSWERED")


def test_the_switch_cdr_after_a_hangup_record_is_passed_on_as_the_switch_s_word():
    tracker = CallTracker("pbx1")
    answered_call(tracker)
    kinds_seen = [h.kind for h in tracker.feed(hangup("1.1"), T0 + 19.5)]
    assert kinds_seen == [CALL_ENDED, CDR_READY]
    (switch,) = tracker.feed(cdr("1.1", billsec="15"), T0 + 19.6)
    assert switch.kind == CDR_SWITCH and (switch.record["billsec"], switch.record["disposition"]) == (15, "ANSWERED")
    assert tracker.feed(cdr("1.1", billsec="15"), T0 + 19.7) == []     # once


def test_the_carrier_the_dialplan_put_in_the_cdr_rides_on_the_record():
    """`Set(CDR(carrier)=${RL_CARRIER_n})` before each Dial; cdr_manager's [mappings] sends it as
    `Carrier` (issue 19, point 2). Both ways a Cdr becomes a record carry it."""
    tracker = CallTracker("pbx1")
    (happening,) = tracker.feed(dict(cdr("7.7"), Carrier="3"), T0)
    assert happening.kind == CDR_READY and happening.record["carrier"] == "3"
    answered_call(tracker, "1.1")
    tracker.feed(hangup("1.1"), T0 + 19.5)
    (switch,) = tracker.feed(dict(cdr("1.1", billsec="15"), Carrier="4"), T0 + 19.6)
    assert switch.kind == CDR_SWITCH and switch.record["carrier"] == "4"
    (plain,) = tracker.feed(cdr("8.8"), T0 + 20)
    assert "carrier" not in plain.record
