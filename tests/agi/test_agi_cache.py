"""The fast path's caches (workers/agi/cache.py): every change committed elsewhere applies to the
next call, the live part is read fresh, and it decides as the reference path does."""
import concurrent.futures
import time
from decimal import Decimal

from sqlalchemy import select

from app.accounts.operations import set_account_status
from app.extensions import db
from app.routing.models import Carrier, RouteGroup, TranslationRule
from app.routing.rules import add_rule
from tests.agi.client import call
from tests.agi.test_agi_routing import carriers, group, legs
from tests.ami.db_harness import calling_account, fresh_account
from tenants.models import Tenant
from tenants.scope import unscoped
from workers.agi.decide import CallControl

UK = "442071234567"


def dial(agi, endpoint, number=UK):
    return call(agi.port, "outbound", (endpoint, number), extension=number)


def _root():
    return db.session.execute(select(Tenant).order_by(Tenant.id).limit(1)).scalar_one()


def test_a_suspension_refuses_the_next_call_within_a_second(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"       # the profile is cached now
    with unscoped():
        set_account_status(fresh_account(account.id), "suspend", reason="unpaid")
        db.session.commit()                                                # announces the account
    changed = time.monotonic()
    s = dial(agi, exts[0][1])
    assert s.variables["RL_CAUSE"] == "account_suspended" and time.monotonic() - changed < 1.0
    deadline = time.monotonic() + 2
    while agi.control.fast.notices == 0 and time.monotonic() < deadline:   # the notice arrives too
        time.sleep(0.02)
    assert agi.control.fast.notices >= 1
    with unscoped():
        set_account_status(fresh_account(account.id), "enable")
        db.session.commit()
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"


def test_rules_edited_apply_to_the_next_call(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"
    reloads = agi.control.fast.reloads["profile"]
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"
    assert agi.control.fast.reloads["profile"] == reloads                 # nothing changed: cached
    with unscoped():
        add_rule(fresh_account(account.id), "deny", "44207")
        db.session.commit()
    assert dial(agi, exts[0][1]).variables["RL_CAUSE"] == "destination_denied"
    with unscoped():   # a translation rule: 0 + national number -> 44...
        db.session.add(TranslationRule(tenant_id=account.tenant_id, account_id=account.id, position=1,
                                       match="0", strip_digits=1, add_prefix="44"))
        db.session.commit()
    s = dial(agi, exts[0][1], "01611234567")
    assert s.variables["RL_DECISION"] == "ALLOW" and s.variables["RL_DESTINATION"] == "441611234567"
    with unscoped():
        rule = db.session.execute(select(TranslationRule).where(TranslationRule.account_id == account.id)).scalar_one()
        rule.add_prefix = "44207"        # an edit, not a new row
        rule.strip_digits = 5
        db.session.commit()
    s = dial(agi, exts[0][1], "01611234567")
    assert s.variables["RL_CAUSE"] == "destination_denied" and s.variables["RL_DESTINATION"] == "44207234567"


def test_a_rate_deck_import_changes_the_route(agi, make_tenant, make_account):
    from app.rating.imports import new_import, run_import
    from app.rating.models import RateSheet

    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        root = _root()
    a, b = carriers(root, [("alpha", "0.010", 0, ""), ("bravo", "0.020", 0, "")])
    group(root, "Default", "lcr", {"44": [a, b]}, default=True)
    assert legs(dial(agi, exts[0][1])) == [f"PJSIP/{UK}@carrier-{x}" for x in (a, b)]
    with unscoped():
        sheet = db.session.get(RateSheet, db.session.get(Carrier, a).buy_rate_sheet_id)
        imp = new_import(sheet, b"Prefix,ISO,Destination,Rate\n44,GB,United Kingdom,0.030\n", mode="merge")
        db.session.commit()
        run_import(imp.id)
    # the new version's prefix index is built in the background while the old one answers
    deadline, order = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        order = legs(dial(agi, exts[0][1]))
        if order[0].endswith(f"carrier-{b}"):
            break
        time.sleep(0.1)
    assert order == [f"PJSIP/{UK}@carrier-{x}" for x in (b, a)]
    with unscoped():                  # a carrier switched off: the next call
        db.session.get(Carrier, b).enabled = False
        db.session.commit()
    assert legs(dial(agi, exts[0][1])) == [f"PJSIP/{UK}@carrier-{a}"]


def test_two_concurrent_calls_for_the_last_credit_do_not_both_pass(agi, make_tenant, make_account):
    # 1/min, 60 s first block: 1.00 buys exactly one first block.
    account, exts = calling_account(make_tenant, make_account, credit="1.00", rates=(("44", "GB", "1.00", 60, 60),))
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"      # alone, it passes
    agi.set_in_use(account.account_number, 2)      # both channels are up on the switch
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        sessions = list(pool.map(lambda ext: dial(agi, ext[1]), exts[:2]))
    assert sum(s.variables["RL_DECISION"] == "ALLOW" for s in sessions) <= 1
    assert {s.variables.get("RL_CAUSE") for s in sessions if s.variables["RL_DECISION"] != "ALLOW"} == {"no_credit"}
    # the balance is read fresh: the last cent spent, the next call is refused
    agi.set_in_use(account.account_number, 1)
    from app import ledger
    with unscoped():
        ledger.post(account.id, Decimal("-0.01"), "adjustment", "test:last-cent")
        db.session.commit()
    assert dial(agi, exts[0][1]).variables["RL_CAUSE"] == "no_credit"


def test_the_fast_path_decides_as_the_reference_path(app, agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="0.50", max_channels=3,
                                    rates=(("44", "GB", "0.60", 30, 6), ("33", "FR", "0.10")))
    with unscoped():
        root = _root()
        add_rule(fresh_account(account.id), "deny", "4477")
        db.session.add(TranslationRule(tenant_id=account.tenant_id, account_id=account.id, position=1,
                                       match="0", strip_digits=1, add_prefix="44"))
        db.session.commit()
    a, b = carriers(root, [("alpha", "0.010", 0, ""), ("bravo", "0.020", 2, "00")])
    group(root, "Default", "lcr", {"44": [a, b], "4416": [b]}, default=True)
    reference = CallControl(app, agi.counts, cached=False)
    try:
        cases = [(exts[0][1], n) for n in (UK, "441611234567", "447700900123", "02071234567", "33123456789",
                                            "49301234567", exts[1][0], "", "1")] + [("nobody", UK)]
        for in_use in (1, 2, 4):
            agi.set_in_use(account.account_number, in_use)
            for endpoint, number in cases:
                now = time.time()
                fast = agi.run(agi.control.decide(endpoint, number, now))
                slow = agi.run(reference.decide(endpoint, number, now))
                assert (fast.allowed, fast.cause, fast.destination, fast.max_seconds, fast.caller_id,
                        [leg.dial for leg in fast.legs]) == (
                        slow.allowed, slow.cause, slow.destination, slow.max_seconds, slow.caller_id,
                        [leg.dial for leg in slow.legs]), (in_use, endpoint, number)
        agi.set_in_use(account.account_number, 1)
        with unscoped():
            db.session.execute(select(RouteGroup)).scalars().first().strategy = "priority"
            db.session.commit()
        fast, slow = (agi.run(c.decide(exts[0][1], UK, time.time())) for c in (agi.control, reference))
        assert fast.allowed and [leg.dial for leg in fast.legs] == [leg.dial for leg in slow.legs] == [
            f"PJSIP/{UK}@carrier-{a}", f"PJSIP/002071234567@carrier-{b}"]
    finally:
        reference.close()


def test_profiles_loaded_in_bulk_serve_the_first_calls(app, agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    other, other_exts = calling_account(make_tenant, make_account, credit="0.00")
    with unscoped():
        add_rule(fresh_account(account.id), "deny", "4420")
        db.session.commit()
    agi.control.fast._profiles.clear()
    agi.control.warm_up(wait=True)
    assert {account.account_number, other.account_number} <= set(agi.control.fast._profiles)
    reloads = agi.control.fast.reloads["profile"]
    assert dial(agi, exts[0][1]).variables["RL_CAUSE"] == "destination_denied"        # the bulk-loaded rule
    assert dial(agi, exts[0][1], "441611234567").variables["RL_DECISION"] == "ALLOW"
    assert dial(agi, other_exts[0][1]).variables["RL_CAUSE"] == "no_credit"
    assert agi.control.fast.reloads["profile"] == reloads      # no profile read again
