"""The watcher with the database-backed policy, end to end: fake Asterisk over TCP, real
panoramisk, PostgreSQL and Redis. Limits, shared prepaid credit, top-ups, postpaid headroom,
CDRs written once and rated into the ledger, registration status, in-use counts in the portals.
"""
import asyncio
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import ledger
from app.calls.models import Call
from app.extensions import db
from provisioning.models import Extension
from tests.ami.db_harness import (admitted, calling_account, calls_of, eventually_db, fresh_account, ledger_entries,
                                  ledger_sum, run_db_world, set_account)
from tests.ami.harness import SERVER, eventually
from tenants.scope import unscoped

UK = "442071234567"
CHINA = "8613912345678"


def rating_installed() -> bool:
    try:
        import app.rating.cdr  # noqa: F401
    except ImportError:
        return False
    return True


needs_rating = pytest.mark.skipif(not rating_installed(), reason="app.rating.cdr (rate_calls) not installed yet")


# ---- admission --------------------------------------------------------------------------------
def test_calls_of_accounts_that_are_not_active_are_refused_and_still_recorded(app, make_tenant, make_account):
    accounts = {}
    for status in ("suspended", "disabled", "closed"):
        accounts[status] = calling_account(make_tenant, make_account)
        set_account(accounts[status][0].id, status=status)

    async def scenario(w):
        for status, (account, exts) in accounts.items():
            channel = w.call(exts[0][1], account.account_number, UK)
            assert (await w.hangups_of(channel))["Cause"] == "21", status
            await eventually_db(lambda: len(calls_of(account.id)) == 1, what=f"the {status} account's CDR")
            (call,) = calls_of(account.id)
            assert (call.disposition, call.billsec, call.destination) == ("FAILED", 0, UK)
            assert call.extension == exts[0][1] and call.server == SERVER
            assert await w.counts.account(account.account_number) == 0
    run_db_world(app, scenario)


def test_a_call_naming_an_unknown_account_is_refused_and_not_stored(app, make_tenant, make_account):
    async def scenario(w):
        channel = w.call("t9_1000", "999999999", UK)
        assert (await w.hangups_of(channel))["Cause"] == "21"
        await w.settled()
        with unscoped():
            from app.calls.models import Call
            assert db.session.execute(select(Call)).first() is None
    run_db_world(app, scenario)


def test_expired_accounts_are_refused(app, make_tenant, make_account):
    expiries = {
        "date": {"expiry_mode": "date", "expiry_date": date.today() - timedelta(days=2)},
        "days after first use": {"expiry_mode": "days_after_first_use", "expiry_days": 3,
                                 "first_used_at": datetime.utcnow() - timedelta(days=4)},
        "days after creation": {"expiry_mode": "days_after_creation", "expiry_days": 10,
                                "created_at": datetime.utcnow() - timedelta(days=11)},
    }
    accounts = {}
    for name, expiry in expiries.items():
        accounts[name] = calling_account(make_tenant, make_account)
        set_account(accounts[name][0].id, **expiry)

    async def scenario(w):
        calls = {name: w.call(exts[0][1], account.account_number, UK) for name, (account, exts) in accounts.items()}
        for name, channel in calls.items():
            assert (await w.hangups_of(channel))["Cause"] == "21", name
    run_db_world(app, scenario)


def test_an_account_that_expires_later_or_on_first_use_calls_and_its_first_use_is_kept_once(
        app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="100")
    set_account(account.id, expiry_mode="days_after_first_use", expiry_days=30)

    async def scenario(w):
        before = time.time()
        first = w.call(exts[0][1], account.account_number, UK)
        await eventually_db(lambda: fresh_account(account.id).first_used_at is not None, what="first use")
        used = fresh_account(account.id).first_used_at
        assert abs((used - datetime.fromtimestamp(before, timezone.utc).replace(tzinfo=None)).total_seconds()) < 2
        w.ami.hangup(first)
        await asyncio.sleep(0.2)
        w.call(exts[1][1], account.account_number, UK)
        await w.settled()
        assert fresh_account(account.id).first_used_at == used
        assert w.ami.actions("Hangup") == []
    run_db_world(app, scenario)


def test_a_call_beyond_max_channels_is_refused_with_cause_34(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="100", users=3, max_channels=2)

    async def scenario(w):
        calls = [w.call(sip, account.account_number, UK) for _, sip in exts]
        hangup = await w.hangups_of(calls[2])
        assert hangup["Cause"] == "34"
        await w.settled()
        assert [a["Channel"] for a in w.ami.actions("Hangup")] == [calls[2]]
        assert await w.counts.account(account.account_number) == 2
    run_db_world(app, scenario)


def test_calls_beyond_the_cps_limit_are_refused(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="100", users=4, cps_limit=3)

    async def scenario(w):
        calls = [w.call(sip, account.account_number, UK) for _, sip in exts]
        await w.hangups_of(calls[3])
        await w.settled()
        assert [(a["Channel"], a["Cause"]) for a in w.ami.actions("Hangup")] == [(calls[3], "34")]
    run_db_world(app, scenario)


def test_a_country_the_plan_has_not_opened_and_a_number_without_a_rate_are_refused(
        app, make_tenant, make_account):
    account, exts = calling_account(
        make_tenant, make_account, credit="100", users=3, countries=(("GB", 0),),
        rates=(("44", "GB", "0.10"), ("86", "CN", "0.10")))

    async def scenario(w):
        closed = w.call(exts[0][1], account.account_number, CHINA)
        no_rate = w.call(exts[1][1], account.account_number, "33142685300")
        opened = w.call(exts[2][1], account.account_number, UK)
        assert (await w.hangups_of(closed))["Cause"] == "21"
        assert (await w.hangups_of(no_rate))["Cause"] == "21"
        await w.settled()
        assert list(w.ami.channels) == [opened]
    run_db_world(app, scenario)


def test_a_call_to_an_extension_of_the_same_reseller_needs_no_rate(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="0.00")

    async def scenario(w):
        internal = w.call(exts[0][1], account.account_number, exts[1][0])
        w.ami.answer(internal)
        await asyncio.sleep(0.3)
        assert w.ami.actions("Hangup") == []
        assert w.watcher.deadline_of(SERVER, w.ami.channels[internal]["Uniqueid"]) is None
    run_db_world(app, scenario)


def test_a_prepaid_account_without_credit_for_the_first_block_is_refused(app, make_tenant, make_account):
    # 30 s first block at 0.60/min costs 0.30; 0.29 does not buy it.
    account, exts = calling_account(make_tenant, make_account, credit="0.29",
                                    rates=(("44", "GB", "0.60", 30, 6),))

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        assert (await w.hangups_of(channel))["Cause"] == "21"
    run_db_world(app, scenario)


# ---- shared credit and cut-off ----------------------------------------------------------------------
@needs_rating
def test_three_calls_share_prepaid_credit_are_cut_off_when_it_runs_out_and_are_rated_into_the_ledger(
        app, make_tenant, make_account):
    # 3.00 of credit, three calls at 1.00/s: each gets 1 s after answer.
    account, exts = calling_account(make_tenant, make_account, credit="3.00", users=3)

    async def scenario(w):
        calls = [w.call(sip, account.account_number, UK) for _, sip in exts]
        await w.settled()
        answered = time.time()
        for name in calls:
            w.ami.answer(name)
        hangups = [await w.hangups_of(name, 4) for name in calls]
        for hangup in hangups:
            assert hangup["Cause"] == "16"
            assert 0.95 <= hangup.at - answered <= 1.3, hangup.at - answered
        await eventually_db(lambda: len(calls_of(account.id)) == 3 and all(c.rated_at for c in calls_of(account.id)),
                            what="3 rated CDRs")
        assert w.watcher.cutoffs == 3
    run_db_world(app, scenario)
    rated = calls_of(account.id)
    assert [c.billsec for c in rated] == [1, 1, 1]
    assert sum(c.cost for c in rated) == Decimal("3.00")
    balance = fresh_account(account.id).balance
    assert balance == Decimal("0.00") == ledger_sum(account.id)
    assert {e.idempotency_key for e in ledger_entries(account.id, "call")} == {f"call:{c.id}" for c in rated}


@needs_rating
def test_a_third_call_answered_within_the_same_second_is_refused_and_never_makes_the_others_overspend(
        app, make_tenant, make_account):
    # 0.15 at 0.60/min billed 6/6: two calls can pay one 6 s block each (0.12); the third, answered
    # within the same second, cannot pay its first. It is refused (cause 21) and the first two run
    # their 6 s: the balance ends at 0.03, never below zero.
    account, exts = calling_account(make_tenant, make_account, credit="0.15", users=3,
                                    rates=(("44", "GB", "0.60", 6, 6),))

    async def scenario(w):
        calls = [w.call(sip, account.account_number, UK) for _, sip in exts]
        await w.settled()
        answered = []
        for name, gap in zip(calls, (0.0, 0.2, 0.4)):   # three answers inside one second
            await asyncio.sleep(gap)
            answered.append(time.time())
            w.ami.answer(name)
        refused = await w.hangups_of(calls[2], 3)
        assert refused["Cause"] == "21" and refused.at - answered[2] < 0.5
        for name, at in zip(calls[:2], answered):
            cut = await w.hangups_of(name, 9)
            assert cut["Cause"] == "16" and 5.95 <= cut.at - at <= 6.4, cut.at - at
        await eventually_db(lambda: sum(1 for c in calls_of(account.id) if c.rated_at) == 3, timeout=5,
                            what="3 rated CDRs")
        assert w.watcher.refusals == 1
    run_db_world(app, scenario, timeout=30)
    rated = sorted(calls_of(account.id), key=lambda c: c.id)
    assert sorted(c.billsec for c in rated) == [0, 6, 6]
    assert fresh_account(account.id).balance == Decimal("0.03") == ledger_sum(account.id)


def test_when_one_of_two_calls_sharing_credit_ends_the_other_gets_the_rest(app, make_tenant, make_account):
    # 2.00 at 2 x 1.00/s -> 1 s each; the second call ends within its first second (billsec 0,
    # free), so the first has the whole 2.00: 2 s.
    account, exts = calling_account(make_tenant, make_account, credit="2.00")

    async def scenario(w):
        first = w.call(exts[0][1], account.account_number, UK)
        second = w.call(exts[1][1], account.account_number, UK)
        await w.settled()
        answered = time.time()
        w.ami.answer(first)
        w.ami.answer(second)
        uid = w.ami.channels[first]["Uniqueid"]
        await eventually(lambda: w.watcher.deadline_of(SERVER, uid) is not None, what="deadline")
        assert w.watcher.deadline_of(SERVER, uid) == pytest.approx(answered + 1, abs=0.2)
        w.ami.hangup(second)
        await eventually(lambda: w.watcher.deadline_of(SERVER, uid) == pytest.approx(answered + 2, abs=0.2),
                         timeout=3, what="the first call's deadline moved to 2 s")
        hangup = await w.hangups_of(first, 3)
        assert 1.95 <= hangup.at - answered <= 2.3
    run_db_world(app, scenario)


@needs_rating
def test_a_top_up_committed_during_a_call_extends_it(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="1.00")

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        await w.settled()
        answered = time.time()
        w.ami.answer(channel)
        await asyncio.sleep(0.5)
        with unscoped():
            ledger.post(account.id, Decimal("1.00"), "payment", "test:top-up", description="Top-up")
            db.session.commit()          # after commit, ledger.post announces the account
        await asyncio.sleep(0.8)
        assert w.ami.actions("Hangup") == []            # the old deadline (1 s) has passed
        hangup = await w.hangups_of(channel, 3)
        assert 1.95 <= hangup.at - answered <= 2.3
        await eventually_db(lambda: [c.rated_at is not None for c in calls_of(account.id)] == [True], what="CDR")
    run_db_world(app, scenario)
    assert fresh_account(account.id).balance == ledger_sum(account.id) == Decimal("0.00")


def test_a_top_up_without_rating_still_moves_the_deadline(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="1.00")

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        await w.settled()
        w.ami.answer(channel)
        uid = w.ami.channels[channel]["Uniqueid"]
        await eventually(lambda: w.watcher.deadline_of(SERVER, uid) is not None, what="deadline")
        before = w.watcher.deadline_of(SERVER, uid)
        with unscoped():
            ledger.post(account.id, Decimal("3.00"), "payment", "test:top-up-2")
            db.session.commit()
        await eventually(lambda: w.watcher.deadline_of(SERVER, uid) == pytest.approx(before + 3, abs=0.01),
                         timeout=3, what="deadline moved by 3 s")
    run_db_world(app, scenario)


def test_a_postpaid_account_calls_on_its_credit_limit_headroom(app, make_tenant, make_account):
    # Balance 0, credit limit 1.50: 1 s at 1.00/s (the next second would cost 2.00).
    account, exts = calling_account(make_tenant, make_account, credit="0", billing_type="postpaid",
                                    credit_limit=Decimal("1.50"))

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        await w.settled()
        answered = time.time()
        w.ami.answer(channel)
        hangup = await w.hangups_of(channel, 3)
        assert hangup["Cause"] == "16"
        assert 0.95 <= hangup.at - answered <= 1.3
    run_db_world(app, scenario)


def test_a_postpaid_account_at_its_credit_limit_is_refused(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="0", billing_type="postpaid",
                                    credit_limit=Decimal("0"))

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        assert (await w.hangups_of(channel))["Cause"] == "21"
    run_db_world(app, scenario)


# ---- CDRs ----------------------------------------------------------------------------------
@needs_rating
def test_a_cdr_is_written_and_rated_once_despite_duplicate_and_out_of_order_hangup_and_cdr(
        app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="100")

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        w.ami.answer(channel)
        await asyncio.sleep(1.1)
        live = dict(w.ami.channels[channel])
        ended = w.ami.hangup(channel, emit=False)
        w.ami.cdr(ended)                        # Cdr first...
        w.ami.cdr(ended)                        # ...twice...
        w.ami.emit({"Event": "Hangup", **{k: v for k, v in live.items() if not k.startswith("_")},
                    "Cause": "16"})             # ...then the Hangup, twice
        w.ami.emit({"Event": "Hangup", **{k: v for k, v in live.items() if not k.startswith("_")},
                    "Cause": "16"})
        await eventually_db(lambda: [c.rated_at is not None for c in calls_of(account.id)] == [True],
                            what="one rated CDR")
        # A watcher restarted between the Hangup and its Cdr records it again: still one call.
        record = {"server": SERVER, "uniqueid": live["Uniqueid"], "accountcode": account.account_number,
                  "channel": channel, "extension": exts[0][1], "destination": UK, "linkedid": live["Uniqueid"],
                  "start": None, "answer": None, "end": None, "billsec": 1, "disposition": "ANSWERED"}
        await w.policy.record_cdr(record)
        await w.settled()
    run_db_world(app, scenario)
    (call,) = calls_of(account.id)
    assert (call.disposition, call.billsec, call.destination) == ("ANSWERED", 1, UK)
    assert call.cost == Decimal("1.00")
    assert [e.amount for e in ledger_entries(account.id, "call")] == [Decimal("-1.00")]
    assert fresh_account(account.id).balance == ledger_sum(account.id) == Decimal("99.00")


def test_a_cdr_is_stored_once_even_when_the_same_record_comes_twice(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="100")
    from workers.ami.db_policy import DatabasePolicy

    policy = DatabasePolicy(app)
    record = {"server": "pbx9", "uniqueid": "1700000000.7", "accountcode": account.account_number,
              "channel": f"PJSIP/{exts[0][1]}-00000001", "extension": exts[0][1], "destination": UK,
              "linkedid": "1700000000.7", "start": datetime(2026, 1, 5, 10, 0, 0),
              "answer": datetime(2026, 1, 5, 10, 0, 5), "end": datetime(2026, 1, 5, 10, 0, 8),
              "billsec": 3, "disposition": "ANSWERED"}

    async def twice():
        await asyncio.gather(policy.record_cdr(record), policy.record_cdr(dict(record)))
        await policy.record_cdr(record)
    try:
        asyncio.run(twice())
    finally:
        policy.close()
    (call,) = calls_of(account.id)
    assert (call.server, call.uniqueid, call.billsec, call.tenant_id) == ("pbx9", "1700000000.7", 3,
                                                                           account.tenant_id)
    assert call.answered_at == datetime(2026, 1, 5, 10, 0, 5)
    if rating_installed():
        assert len(ledger_entries(account.id, "call")) == 1
        assert fresh_account(account.id).balance == ledger_sum(account.id)


def _cdr(account, ext, uniqueid, billsec, *, server="pbx9", destination=UK):
    start = datetime(2026, 1, 5, 10, 0, 0, tzinfo=timezone.utc)
    return {"server": server, "uniqueid": uniqueid, "accountcode": account.account_number,
            "channel": f"PJSIP/{ext}-00000001", "extension": ext, "destination": destination, "linkedid": uniqueid,
            "start": start, "answer": start if billsec else None, "end": start + timedelta(seconds=billsec),
            "billsec": billsec, "disposition": "ANSWERED" if billsec else "NO ANSWER"}


def _record_all(app, records, **kwargs):
    from workers.ami.db_policy import DatabasePolicy

    policy = DatabasePolicy(app, **kwargs)

    async def send():
        return await asyncio.gather(*(policy.record_cdr(r) for r in records), return_exceptions=True)
    try:
        outcomes = asyncio.run(send())
    finally:
        policy.close()
    return policy, outcomes


@needs_rating
def test_cdrs_arriving_together_are_written_and_rated_in_batches_of_several_resellers(
        app, make_tenant, make_account):
    first, first_exts = calling_account(make_tenant, make_account, credit="100")
    second, second_exts = calling_account(make_tenant, make_account, credit="100")
    assert first.tenant_id != second.tenant_id
    stranger = type("Unknown", (), {"account_number": "0000000404"})()
    records = ([_cdr(first, first_exts[0][1], f"1700000100.{n}", 2) for n in range(30)]
               + [_cdr(second, second_exts[0][1], f"1700000200.{n}", 3) for n in range(30)]
               + [_cdr(first, first_exts[0][1], "1700000100.0", 2),        # sent twice
                  _cdr(stranger, "100", "1700000300.1", 5),                # unknown account: skipped
                  _cdr(second, second_exts[0][1], "1700000200.99", 0)])     # unanswered: free
    policy, outcomes = _record_all(app, records)
    assert outcomes == [None] * len(records)
    assert policy._cdrs.batches < len(records) / 2      # they queued up behind the first batch
    for account, n, each, balance in ((first, 30, Decimal("2.00"), Decimal("40.00")),
                                      (second, 31, Decimal("3.00"), Decimal("10.00"))):
        calls = calls_of(account.id)
        assert len(calls) == n and all(c.rated_at is not None for c in calls)
        assert {c.tenant_id for c in calls} == {account.tenant_id}
        assert sorted({c.cost for c in calls}) == ([Decimal("0.00"), each] if n == 31 else [each])
        assert len(ledger_entries(account.id, "call")) == 30
        assert fresh_account(account.id).balance == ledger_sum(account.id) == balance
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(Call).where(Call.uniqueid == "1700000300.1")) == 0


@needs_rating
def test_cdrs_that_cannot_be_rated_are_stored_unrated_and_the_rating_job_rates_them(
        app, make_tenant, make_account, monkeypatch):
    import app.rating.cdr as cdr
    from workers.rating import rate_pending_calls

    account, exts = calling_account(make_tenant, make_account, credit="100")

    def broken(records):
        raise RuntimeError("a rating bug")
    monkeypatch.setattr(cdr, "store_rated_calls", broken)
    _, outcomes = _record_all(app, [_cdr(account, exts[0][1], f"1700000400.{n}", 4) for n in range(3)])
    assert outcomes == [None] * 3
    calls = calls_of(account.id)
    assert [(c.billsec, c.rated_at, c.cost) for c in calls] == [(4, None, None)] * 3
    assert ledger_entries(account.id, "call") == []
    monkeypatch.undo()

    assert rate_pending_calls(account.tenant_id)["charged"] == 3
    assert [c.cost for c in calls_of(account.id)] == [Decimal("4.00")] * 3
    assert fresh_account(account.id).balance == ledger_sum(account.id) == Decimal("88.00")


@needs_rating
def test_a_batch_that_meets_a_deadlock_is_written_again_whole(app, make_tenant, make_account, monkeypatch):
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    import app.rating.cdr as cdr

    account, exts = calling_account(make_tenant, make_account, credit="100")
    real, attempts = cdr.store_rated_calls, []

    def deadlocked_once(records):
        attempts.append(len(records))
        summary = real(records)        # written, then rolled back with the deadlock
        if len(attempts) == 1:
            raise OperationalError("UPDATE accounts …", {}, psycopg.errors.DeadlockDetected("deadlock detected"))
        return summary
    monkeypatch.setattr(cdr, "store_rated_calls", deadlocked_once)
    _, outcomes = _record_all(app, [_cdr(account, exts[0][1], "1700000500.1", 5)])
    assert outcomes == [None] and attempts == [1, 1]
    (call,) = calls_of(account.id)
    assert call.cost == Decimal("5.00")
    assert [e.amount for e in ledger_entries(account.id, "call")] == [Decimal("-5.00")]
    assert fresh_account(account.id).balance == ledger_sum(account.id) == Decimal("95.00")


# ---- registration and in-use counts in the portals -------------------------------------------------
def test_registration_events_update_the_extensions(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, users=3)
    (_, a), (_, b), (_, c) = exts

    def ext(sip):
        db.session.rollback()
        with unscoped():
            return db.session.execute(select(Extension).where(Extension.sip_username == sip)
                                      .execution_options(populate_existing=True)).scalar_one()

    async def scenario(w):
        w.ami.emit({"Event": "ContactStatus", "URI": f"sip:{a}@203.0.113.7:5062;ob", "ContactStatus": "Created",
                    "AOR": a, "EndpointName": a, "RoundtripUsec": "0"})
        w.ami.emit({"Event": "PeerStatus", "ChannelType": "PJSIP", "Peer": f"PJSIP/{b}",
                    "PeerStatus": "Reachable"})
        w.ami.emit({"Event": "DeviceStateChange", "Device": f"PJSIP/{c}", "State": "NOT_INUSE"})
        w.ami.emit({"Event": "ContactStatus", "URI": "sip:trunk@198.51.100.1", "ContactStatus": "Created",
                    "AOR": "trunk", "EndpointName": "trunk"})          # not an extension: ignored
        await eventually_db(lambda: ext(a).registered and ext(b).registered and ext(c).registered,
                            what="three registered")
        assert ext(a).contact_address == "203.0.113.7:5062" and ext(a).last_seen_at is not None
        w.ami.emit({"Event": "ContactStatus", "URI": f"sip:{a}@203.0.113.7:5062;ob", "ContactStatus": "Removed",
                    "AOR": a, "EndpointName": a})
        w.ami.emit({"Event": "DeviceStateChange", "Device": f"PJSIP/{c}", "State": "UNAVAILABLE"})
        await eventually_db(lambda: not ext(a).registered and not ext(c).registered, what="two unregistered")
        assert ext(a).contact_address == "203.0.113.7:5062"    # the last known address stays
        assert ext(b).registered
    run_db_world(app, scenario)


def test_calls_in_use_show_on_the_customer_dashboard_and_per_extension_on_the_users_page(
        app, make_tenant, make_account, make_login, login, new_client):
    account, exts = calling_account(make_tenant, make_account, credit="100", users=2, max_channels=5)
    customer = login(new_client(), make_login(account_tenant(account), "account_admin", account=account))

    async def scenario(w):
        w.call(exts[0][1], account.account_number, UK)
        w.call(exts[0][1], account.account_number, UK)
        await admitted(w, account.account_number, 2)
        page = customer.get("/portal/").get_data(as_text=True)
        assert "Calls in use" in page and '<div class="figure">2</div>' in page and "of 5 allowed" in page
        users = customer.get("/portal/users").get_data(as_text=True)
        assert "2 calls in use" in users
    run_db_world(app, scenario)
    page = customer.get("/portal/").get_data(as_text=True)   # watcher gone: its share expired
    assert '<div class="figure">0</div>' in page


def test_calls_in_use_show_on_the_reseller_account_page(app, make_tenant, make_account, make_login, login,
                                                          new_client):
    account, exts = calling_account(make_tenant, make_account, credit="100", users=2)
    owner = login(new_client(), make_login(account_tenant(account), "reseller_owner"))

    async def scenario(w):
        w.call(exts[1][1], account.account_number, UK)
        await admitted(w, account.account_number, 1)
        resp = owner.get(f"/reseller/accounts/{account.id}")
        assert resp.status_code == 200
        assert "1 call in use" in resp.get_data(as_text=True)
    run_db_world(app, scenario)


def account_tenant(account):
    from tenants.models import Tenant

    with unscoped():
        return db.session.execute(select(Tenant).where(Tenant.id == account.tenant_id)).scalar_one()


def test_the_watcher_stops_at_once_even_right_after_it_logged_in(app, platform):
    """Regression: redis-py can swallow the cancellation of an operation that is connecting;
    the balance listener and the heartbeat then kept stop() waiting forever."""
    import redis.asyncio as aioredis
    from dataclasses import replace

    from tests.ami.fake_server import FakeAsterisk
    from tests.ami.harness import FAST
    from workers.ami.db_policy import DatabasePolicy
    from workers.ami.watcher import AsteriskServer, Watcher

    async def once():
        ami = await FakeAsterisk().start()
        client = aioredis.from_url(app.config["REDIS_URL"])
        policy = DatabasePolicy(app)
        watcher = Watcher([AsteriskServer("pbx1", "127.0.0.1", ami.port, "ringledger", "s3cret")], policy, client,
                          replace(FAST, counts_prefix="ami-stoptest:inuse"))
        try:
            await watcher.start()
            await eventually(lambda: ami.logins == 1, what="login")
            started = time.monotonic()
            await asyncio.wait_for(watcher.stop(), 4)
            return time.monotonic() - started
        finally:
            policy.close()
            await client.aclose()
            await ami.stop()
    for _ in range(4):
        assert asyncio.run(once()) < 1.0


# ---- calls that end while no watcher follows the switch --------------------------------------
def _cdr_pgsql_row(ch: dict, server: str):
    """What Asterisk's cdr_pgsql writes for a channel that ended (timezone=UTC)."""
    from app.calls.switch_cdrs import SwitchCdr

    utc = lambda t: datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None, microsecond=0)  # noqa: E731
    answered, ended = ch["_answered"], ch["_ended"]
    return SwitchCdr(calldate=utc(ch["_created"]), answer=utc(answered) if answered else None, end=utc(ended),
                     src=ch["CallerIDNum"], dst=ch["Exten"], dcontext=ch["Context"], channel=ch["Channel"],
                     lastapp="Dial", duration=int(ended - ch["_created"]),
                     billsec=int(ended - answered) if answered else 0,
                     disposition="ANSWERED" if answered else "NO ANSWER", accountcode=ch["AccountCode"],
                     uniqueid=ch["Uniqueid"], linkedid=ch["Linkedid"], server=server)


@needs_rating
def test_calls_that_end_while_the_watcher_is_stopped_are_billed_once_after_it_starts(app, make_tenant, make_account):
    from workers.ami.db_policy import DatabasePolicy
    from workers.ami.watcher import AsteriskServer, Watcher

    account, exts = calling_account(make_tenant, make_account, credit="100", users=3)

    async def scenario(w):
        calls = [w.call(sip, account.account_number, UK, answer=True) for _, sip in exts]
        await w.settled()
        await asyncio.sleep(1.2)
        await w.watcher.stop()                          # the watcher goes away mid-call
        await asyncio.sleep(1.1)
        ended = [w.ami.hangup(name) for name in calls]  # ...and the calls end meanwhile
        with unscoped():                                # the switch writes its own CDRs
            db.session.add_all(_cdr_pgsql_row(ch, SERVER) for ch in ended)
            db.session.commit()
        policy = DatabasePolicy(app)
        again = Watcher([AsteriskServer(SERVER, "127.0.0.1", w.ami.port, "ringledger", "s3cret")], policy,
                        w.redis, w.watcher.settings)
        await again.start()
        try:
            await eventually_db(lambda: len(calls_of(account.id)) == 3, timeout=5, what="3 calls billed")
            await again.stop()
            again = Watcher([AsteriskServer(SERVER, "127.0.0.1", w.ami.port, "ringledger", "s3cret")], policy,
                            w.redis, w.watcher.settings)
            await again.start()                         # a second start finds nothing more to bill
            await eventually(lambda: again.links[SERVER].reconciliations >= 1, what="reconciled")
            await asyncio.sleep(0.3)
        finally:
            await again.stop()
            policy.close()
    run_db_world(app, scenario, timeout=40)
    calls = calls_of(account.id)
    assert len(calls) == 3 and all(c.recovered and c.rated_at for c in calls)
    assert all(c.billsec >= 2 for c in calls)
    assert len(ledger_entries(account.id, "call")) == 3
    assert fresh_account(account.id).balance == ledger_sum(account.id) == Decimal("100") - sum(c.cost for c in calls)


# ---- a status change or an expiry cuts live calls ---------------------------------------------
@needs_rating
def test_suspending_an_account_hangs_up_its_live_calls_on_every_switch_and_says_so(
        app, make_tenant, make_account):
    from app.accounts.operations import set_account_status
    from app.audit import AuditEntry

    account, exts = calling_account(make_tenant, make_account, credit="100")   # 100 s of credit

    async def scenario(w):
        calls = [w.call(exts[0][1], account.account_number, UK, answer=True, on=0),
                 w.call(exts[1][1], account.account_number, UK, answer=True, on=1)]
        await w.settled()
        await asyncio.sleep(1.1)
        with unscoped():
            acct = fresh_account(account.id)
            set_account_status(acct, "suspend", reason="unpaid")
            db.session.commit()                     # the notice goes out after the commit
        suspended = time.time()
        cuts = [await w.hangups_of(name, 3, on=n) for n, name in enumerate(calls)]
        assert all(0 <= cut.at - suspended < 0.5 for cut in cuts), [cut.at - suspended for cut in cuts]
        await eventually_db(lambda: sum(1 for c in calls_of(account.id) if c.rated_at) == 2, what="2 rated calls")
    run_db_world(app, scenario, servers=2)
    with unscoped():
        entries = list(db.session.execute(select(AuditEntry).where(
            AuditEntry.account_id == account.id, AuditEntry.action == "account.calls_hung_up")).scalars())
    assert len(entries) == 1 and entries[0].details["reason"] == "account suspended"
    assert len(entries[0].details["calls"]) == 2
    calls = calls_of(account.id)
    assert all(1 <= c.billsec <= 2 for c in calls)              # charged up to the hang-up
    assert fresh_account(account.id).balance == ledger_sum(account.id) == Decimal("100") - sum(c.cost for c in calls)


def test_a_call_is_cut_when_its_account_expires_during_it(app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="100")
    expires = time.time() + 1.5
    set_account(account.id, expiry_mode="days_after_creation", expiry_days=1,
                created_at=datetime.fromtimestamp(expires, timezone.utc).replace(tzinfo=None) - timedelta(days=1))

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK, answer=True)
        cut = await w.hangups_of(channel, 4)
        assert 0 <= cut.at - expires < 0.3, cut.at - expires
    run_db_world(app, scenario)
