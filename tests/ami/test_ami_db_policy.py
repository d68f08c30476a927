"""DatabasePolicy called directly (no switch): deadlines with blocks, increments and bundles,
credit shared by several calls, the terms cache, expiry rules."""
import asyncio
import time
from decimal import Decimal
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from app.billing.models import BundleUsage
from app.extensions import db
from tests.ami.db_harness import calling_account
from tenants.scope import unscoped
from workers.ami.db_policy import DatabasePolicy, bundle_period_start, expiry_of  # expiry_of: app/accounts/expiry.py
from workers.ami.policy import LiveCall

UK = "442071234567"


def live(key, answered, destination=UK):
    return LiveCall(key, "pbx1", f"PJSIP/x-{key}", key, key, "", "x", destination, answered - 1, answered)


def deadlines(app, number, calls, now):
    policy = DatabasePolicy(app)
    try:
        return asyncio.run(policy.deadlines(number, calls, now))
    finally:
        policy.close()


def test_first_block_and_increments_bound_a_call(app, make_tenant, make_account):
    # 0.60/min billed 30/6, credit 1.00: 30 s + 11 × 6 s = 96 s cost 0.96; 102 s would cost 1.02.
    account, _ = calling_account(make_tenant, make_account, credit="1.00", rates=(("44", "GB", "0.60", 30, 6),))
    t0 = time.time()
    assert deadlines(app, account.account_number, [live("a", t0)], t0) == {"a": pytest.approx(t0 + 96, abs=1e-3)}


def test_three_calls_share_the_credit_oldest_first(app, make_tenant, make_account):
    # 1.00/s per call, 5.00 of credit, three calls answered 0.2 s apart, each in its first second
    # (3.00 spent if hung up now). One more second each would need 6.00: the two oldest get it
    # (5.00), the newest is hung up at the end of the second it has paid for.
    account, _ = calling_account(make_tenant, make_account, credit="5.00")
    t0 = time.time()
    answered = {"a": t0, "b": t0 + 0.2, "c": t0 + 0.4}
    got = deadlines(app, account.account_number, [live(k, t) for k, t in answered.items()], t0 + 0.5)
    assert {k: round(got[k] - answered[k], 6) for k in answered} == {"a": 2, "b": 2, "c": 1}


def test_a_ringing_call_has_no_deadline_and_costs_nothing(app, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="2.00")
    t0 = time.time()
    ringing = LiveCall("r", "pbx1", "PJSIP/x-r", "r", "r", "", "x", UK, t0, None)
    got = deadlines(app, account.account_number, [live("a", t0), ringing], t0)
    assert got == {"a": pytest.approx(t0 + 2, abs=1e-3), "r": None}


def test_bundle_seconds_are_used_before_the_credit(app, make_tenant, make_account):
    # GB opened with 1 free minute, 50 s used this period: 10 s free, then 1.00 buys 1 s more
    # (no connect fee, no first block after a bundle).
    account, _ = calling_account(make_tenant, make_account, credit="1.00", countries=(("GB", 1),))
    today = datetime.now(timezone.utc).date()
    with unscoped():
        db.session.add(BundleUsage(tenant_id=account.tenant_id, account_id=account.id, country="GB",
                                   period_start=bundle_period_start(today), seconds_used=50))
        db.session.add(BundleUsage(tenant_id=account.tenant_id, account_id=account.id, country="GB",
                                   period_start=bundle_period_start(today) - timedelta(days=40), seconds_used=60))
        db.session.commit()
    t0 = time.time()
    assert deadlines(app, account.account_number, [live("a", t0)], t0) == {"a": pytest.approx(t0 + 11, abs=1e-3)}
    # two calls to GB share the 10 s, 5 s each; one more second for both would need 2.00: the
    # 1.00 buys one more second for the older call only.
    got = deadlines(app, account.account_number, [live("a", t0), live("b", t0 + 0.1)], t0 + 0.2)
    assert got == {"a": pytest.approx(t0 + 6, abs=1e-3), "b": pytest.approx(t0 + 0.1 + 5, abs=1e-3)}


def test_a_call_to_a_destination_without_a_rate_or_a_closed_country_is_hung_up_now(app, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="10.00",
                                 rates=(("44", "GB", "60.00"), ("86", "CN", "60.00")))
    t0 = time.time()
    got = deadlines(app, account.account_number,
                    [live("a", t0), live("cn", t0, "8613912345678"), live("fr", t0, "33142685300"),
                     live("unknown", t0, "")], t0 + 0.5)
    assert got["cn"] == got["fr"] == t0 + 0.5 and got["unknown"] is None
    assert got["a"] == pytest.approx(t0 + 10, abs=1e-3)


def test_the_terms_are_cached_but_the_balance_is_read_every_time(app, make_tenant, make_account):
    from app import ledger

    account, _ = calling_account(make_tenant, make_account, credit="2.00")
    policy = DatabasePolicy(app, terms_ttl=60)
    t0 = time.time()

    async def twice():
        first = await policy.deadlines(account.account_number, [live("a", t0)], t0)
        with unscoped():
            ledger.post(account.id, 3, "payment", "test:cache-top-up")
            db.session.commit()
        second = await policy.deadlines(account.account_number, [live("a", t0)], t0)
        return first, second
    try:
        first, second = asyncio.run(twice())
    finally:
        policy.close()
    assert (first["a"] - t0, second["a"] - t0) == (pytest.approx(2, abs=1e-3), pytest.approx(5, abs=1e-3))
    assert list(policy._terms) == [account.account_number]


def test_an_unknown_account_has_no_deadlines(app):
    t0 = time.time()
    assert deadlines(app, "000", [live("a", t0)], t0) == {"a": None}


@pytest.mark.parametrize("mode, fields, expires", [
    ("none", {}, None),
    ("date", {"expiry_date": date(2026, 3, 1), "timezone": "UTC"}, datetime(2026, 3, 2)),
    ("date", {"expiry_date": date(2026, 3, 1), "timezone": "Europe/Paris"}, datetime(2026, 3, 1, 23)),
    ("days_after_first_use", {"expiry_days": 30, "first_used_at": None}, None),
    ("days_after_first_use", {"expiry_days": 30, "first_used_at": datetime(2026, 1, 1, 12)}, datetime(2026, 1, 31, 12)),
    ("days_after_creation", {"expiry_days": 7, "created_at": datetime(2026, 1, 1)}, datetime(2026, 1, 8)),
    ("days_after_creation", {"expiry_days": None, "created_at": datetime(2026, 1, 1)}, None),
])
def test_expiry_rules(mode, fields, expires):
    account = SimpleNamespace(**{"expiry_mode": mode, "expiry_date": None, "expiry_days": None,
                                 "first_used_at": None, "created_at": None, "timezone": "UTC", **fields})
    assert expiry_of(account, datetime(2026, 1, 1)) == expires


def test_a_call_that_ended_but_is_not_in_the_ledger_yet_still_holds_its_cost(app, make_tenant, make_account):
    # 2.00 at 1.00/s. Call a ended after 1.3 s (billsec 1: 1.00) and its record is not written
    # yet, so the balance still reads 2.00: b, answered now, may spend only the other 1.00.
    account, _ = calling_account(make_tenant, make_account, credit="2.00")
    t0 = time.time()
    ended = LiveCall("a", "pbx1", "PJSIP/x-a", "a", "a", "", "x", UK, t0 - 3, t0 - 1.3, t0)
    got = deadlines(app, account.account_number, [ended, live("b", t0)], t0)
    assert got == {"b": pytest.approx(t0 + 1, abs=1e-3)}
    assert deadlines(app, account.account_number, [live("b", t0)], t0) == {"b": pytest.approx(t0 + 2, abs=1e-3)}


def test_a_call_whose_record_is_already_charged_is_not_counted_twice(app, make_tenant, make_account):
    # The race the three-answers test hit under load: a's record was written and charged (the
    # balance now reads 1.00) while the watcher still lists a as ended-but-unbilled. Counting it
    # again would leave b nothing (hung up at once); b must keep the 1.00 that is really left.
    from app import ledger
    from app.calls.models import Call

    account, _ = calling_account(make_tenant, make_account, credit="2.00")
    t0 = time.time()
    with unscoped():
        db.session.add(Call(tenant_id=account.tenant_id, account_id=account.id, server="pbx1", uniqueid="a",
                            destination=UK, started_at=datetime.now(timezone.utc).replace(tzinfo=None),
                            billsec=1, disposition="ANSWERED", rated_at=datetime.now(timezone.utc).replace(tzinfo=None),
                            cost=Decimal("1.00")))
        ledger.post(account.id, Decimal("-1.00"), "call", "call:race-a")
        db.session.commit()
    ended = LiveCall("a", "pbx1", "PJSIP/x-a", "a", "a", "", "x", UK, t0 - 3, t0 - 1.3, t0)
    got = deadlines(app, account.account_number, [ended, live("b", t0)], t0)
    assert got == {"b": pytest.approx(t0 + 1, abs=1e-3)}


def test_deadlines_round_as_the_cdr_writer_at_the_resellers_call_charge_precision(app, make_tenant, make_account):
    """0.0010 of credit at 0.005/min per second. At 4 places (a new reseller) a second costs
    0.0001: the call may last 12 s and its record then costs exactly the credit. At the cent
    every second up to 59 s rounds to 0.00. The precision is read fresh at every recomputation:
    a change on the settings page counts at the next one, cached terms or not."""
    from app.rating.cdr import CallRecord, store_rated_calls
    from tenants.models import Tenant
    from tenants.scope import tenant_scope
    from tests.ami.db_harness import fresh_account

    from app import ledger

    account, _ = calling_account(make_tenant, make_account, credit="1.00", rates=(("44", "GB", "0.005", "0", 1, 1),))
    with tenant_scope(account.tenant_id):                          # earlier calls left 0.0010
        ledger.post(account.id, Decimal("-0.9990"), "call", "call:earlier", places=4)
        db.session.commit()
    t0 = time.time()
    policy = DatabasePolicy(app)
    try:
        assert asyncio.run(policy.deadlines(account.account_number, [live("a", t0)], t0)) == {
            "a": pytest.approx(t0 + 12, abs=1e-3)}
        with unscoped():
            db.session.get(Tenant, account.tenant_id).call_charge_places = 2
            db.session.commit()
        assert asyncio.run(policy.deadlines(account.account_number, [live("a", t0)], t0)) == {
            "a": pytest.approx(t0 + 59, abs=1e-3)}
    finally:
        policy.close()
    with unscoped():
        db.session.get(Tenant, account.tenant_id).call_charge_places = 4
        db.session.commit()
    with tenant_scope(account.tenant_id):
        store_rated_calls([CallRecord(account.id, "pbx1", "precision.1", UK, datetime(2026, 5, 1, 9), 12)])
        db.session.commit()
    assert fresh_account(account.id).balance == 0                 # 0.0010 - 12 × 0.005/60: never below zero
