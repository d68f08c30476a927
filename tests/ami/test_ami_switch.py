"""Issue 15 on the fake switch (real AMI text protocol, real PostgreSQL and Redis): what a real
Asterisk showed the watcher getting wrong."""
import asyncio
import time
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from provisioning.models import Extension
from tenants.scope import unscoped
from tests.ami.harness import account, eventually
from tests.ami.db_harness import (admitted, calling_account, calls_of, eventually_db, fresh_account,
                                  ledger_sum, run_db_world)

UK = "442071234567"


def test_three_answers_inside_one_second_a_third_call_the_credit_cannot_cover_is_refused_alone(
        app, make_tenant, make_account):
    # 30.00/min billed 2/2: 1.00 a 2-second block. 2.50 pays the first blocks of two calls; the
    # third's (1.00 more) does not fit. Answered 0.3 s apart, all inside their first second,
    # the third must be refused (cause 21) and the first two keep their 2 s; the account ends
    # at 0.50, never below zero.
    account, exts = calling_account(make_tenant, make_account, credit="2.50", users=3,
                                    rates=(("44", "GB", "30.00", 2, 2),))

    async def scenario(w):
        calls = [w.call(sip, account.account_number, UK) for _, sip in exts]
        await admitted(w, account.account_number, 3)
        answered = {}
        for name in calls:
            answered[name] = time.time()
            w.ami.answer(name)
            await asyncio.sleep(0.3)
        third = await w.hangups_of(calls[2], 3)
        assert third["Cause"] == "21"
        assert third.at - answered[calls[2]] < 0.5, third.at - answered[calls[2]]
        for name in calls[:2]:
            hangup = await w.hangups_of(name, 4)
            assert hangup["Cause"] == "16"
            assert 1.95 <= hangup.at - answered[name] <= 2.4, hangup.at - answered[name]
        await eventually_db(lambda: len(calls_of(account.id)) == 3
                            and all(c.rated_at for c in calls_of(account.id)), what="3 rated calls")
        assert w.watcher.refusals == 1 and w.watcher.cutoffs == 2

    run_db_world(app, scenario)
    rated = calls_of(account.id)
    assert sorted(c.billsec for c in rated) == [0, 2, 2]
    balance = fresh_account(account.id).balance
    assert balance == Decimal("0.50") == ledger_sum(account.id)


def test_a_call_overdue_when_the_link_comes_back_is_hung_up_at_once_after_the_snapshot(ami_world):
    # The cut-off Hangup goes out on a session that dies before Asterisk acts on it; after the
    # reconnect the snapshot shows the call still there, past its deadline: cut now, not after
    # hangup_retry (1 s here).
    async def scenario(w):
        channel = w.call("1001", "100001")
        await w.settled()
        w.ami.answer(channel)
        w.ami.ignore_hangups = True            # the first Hangup is answered but lost
        first = await w.hangups_of(channel, 3)
        w.ami.ignore_hangups = False
        w.ami.drop_connections()
        await eventually(lambda: len(w.ami.actions("CoreShowChannels")) >= 2, what="second snapshot")
        snapshot = w.ami.actions("CoreShowChannels")[-1]
        await eventually(lambda: len([a for a in w.ami.actions("Hangup") if a.get("Channel") == channel]) >= 2,
                         timeout=3, what="a second Hangup")
        hangups = [a for a in w.ami.actions("Hangup") if a.get("Channel") == channel]
        assert len(hangups) == 2 and hangups[1].connection == 2, hangups
        assert hangups[1].at - snapshot.at <= 0.25, hangups[1].at - snapshot.at
        assert hangups[1].at - first.at < 1.0
        await eventually(lambda: not w.ami.channels, what="channel hung up")
    ami_world(scenario, accounts=[account("100001", balance=Decimal("0.30"), price_per_second=Decimal("1"))])


def test_phones_registered_before_the_watcher_started_or_while_the_link_was_down_show_as_registered(
        app, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, users=2)
    (_, a), (_, b) = exts

    def ext(sip):
        db.session.rollback()
        with unscoped():
            return db.session.execute(select(Extension).where(Extension.sip_username == sip)
                                      .execution_options(populate_existing=True)).scalar_one()

    def registered_before_start(amis):
        amis[0].contacts[a] = f"sip:{a}@203.0.113.7:5062;ob"

    async def scenario(w):
        await eventually_db(lambda: ext(a).registered, what="a registered from the start-up contact list")
        assert ext(a).contact_address == "203.0.113.7:5062" and ext(a).last_seen_at is not None
        assert not ext(b).registered
        w.ami.drop_connections()
        w.ami.contacts[b] = f"sip:{b}@198.51.100.9:5060"     # registered while we were away (no event seen)
        await eventually_db(lambda: ext(b).registered, what="b registered from the contact list after the reconnect")
        assert ext(b).contact_address == "198.51.100.9:5060"
        assert w.link.contact_reads >= 2

    run_db_world(app, scenario, prepare=registered_before_start)
