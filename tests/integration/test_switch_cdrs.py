"""The switch's own CDRs bill what the watcher never recorded, once: rows as Asterisk's
cdr_pgsql writes them, matched by (server, uniqueid), rated and charged, flagged recovered."""
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.calls.models import Call
from app.calls.switch_cdrs import SwitchCdr, reconcile_switch_cdrs
from app.extensions import db
from app.rating.cdr import CallRecord, store_rated_calls
from tests.ami.db_harness import calling_account, fresh_account, ledger_entries, ledger_sum
from tenants.scope import tenant_scope, unscoped

UK = "442071234567"
T = datetime(2026, 12, 1, 9, 0)


def cdr_row(account, uid, billsec, *, server="pbx1", linkedid=None, answered=True):
    """A row as cdr_pgsql writes it for a call of `billsec` seconds (timezone=UTC)."""
    answer = T + timedelta(seconds=3) if answered else None
    return SwitchCdr(calldate=T, answer=answer, end=(answer or T) + timedelta(seconds=billsec), clid='"" <1001>',
                     src="1001", dst=UK, dcontext="ringledger-customers", channel="PJSIP/1001-00000001",
                     lastapp="Dial", lastdata=f"PJSIP/{UK}@carrier", duration=billsec + 3,
                     billsec=billsec if answered else 0, disposition="ANSWERED" if answered else "NO ANSWER",
                     amaflags=3, accountcode=account, uniqueid=uid, linkedid=linkedid or uid, server=server)


def test_calls_the_watcher_never_recorded_are_billed_once_from_the_switch_cdrs(app, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="100.00")
    number = account.account_number
    with tenant_scope(account.tenant_id):   # the watcher recorded this one itself
        store_rated_calls([CallRecord.of(account.id, "pbx1", "1.1", UK, T, 30, T, T + timedelta(seconds=30),
                                         "ANSWERED", "1001", "1.1")])
        db.session.commit()
    with unscoped():
        db.session.add_all([
            cdr_row(number, "1.1", 30),                    # recorded by the watcher: matched
            cdr_row(number, "1.2", 20),                    # ended while the watcher was away
            cdr_row(number, "1.3", 0, answered=False),     # unanswered: stored, costs nothing
            cdr_row(number, "1.4", 20, linkedid="1.2"),    # another leg of call 1.2: not billed again
            cdr_row("999999", "1.5", 20),                  # no such account
            cdr_row(number, "1.2", 20, server="pbx2"),     # same uniqueid on another switch: its own call
        ])
        db.session.commit()

    first = reconcile_switch_cdrs(now=T + timedelta(hours=1))
    db.session.commit()
    assert first == {"matched": 1, "recovered": 3, "ignored": 2}
    again = reconcile_switch_cdrs(now=T + timedelta(hours=2))
    db.session.commit()
    assert again == {"matched": 0, "recovered": 0, "ignored": 0}   # every row is reconciled

    with unscoped():
        calls = {(c.server, c.uniqueid): c for c in db.session.execute(select(Call)).scalars()}
        rows = list(db.session.execute(select(SwitchCdr).order_by(SwitchCdr.id)).scalars())
    assert set(calls) == {("pbx1", "1.1"), ("pbx1", "1.2"), ("pbx1", "1.3"), ("pbx2", "1.2")}
    assert [calls[k].recovered for k in sorted(calls)] == [False, True, True, True]
    assert (calls[("pbx1", "1.2")].billsec, calls[("pbx1", "1.2")].cost) == (20, Decimal("20.0000"))
    assert all(r.reconciled_at is not None for r in rows)
    assert [r.call_id for r in rows][:3] == [calls[("pbx1", k)].id for k in ("1.1", "1.2", "1.3")]
    # 30 + 20 + 20 at 1.00/s, each call once in the ledger
    keys = [e.idempotency_key for e in ledger_entries(account.id, "call")]
    assert sorted(keys) == sorted({f"call:{calls[k].id}" for k in calls if calls[k].billsec})
    assert fresh_account(account.id).balance == Decimal("30.00") == ledger_sum(account.id)


def test_a_row_younger_than_the_grace_is_left_to_the_watcher(app, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="100.00")
    with unscoped():
        db.session.add(cdr_row(account.account_number, "2.1", 10))
        db.session.commit()
    ended = T + timedelta(seconds=13)
    assert reconcile_switch_cdrs(now=ended + timedelta(seconds=30))["recovered"] == 0
    assert reconcile_switch_cdrs(now=ended + timedelta(seconds=61))["recovered"] == 1
    db.session.commit()


def test_a_call_recovered_from_the_switch_cdrs_keeps_its_carrier_and_platform_cost(
        app, platform, make_tenant, make_account):
    from app.routing.models import Carrier
    from tests.ami.db_harness import make_sheet

    account, _ = calling_account(make_tenant, make_account, credit="100.00")
    buy = make_sheet(platform, (("44", "GB", "0.60"),))           # 0.60 a minute = 0.01 a second
    with unscoped():
        carrier = Carrier(tenant_id=platform.id, name="Wholesale", host="sip.w.example", buy_rate_sheet_id=buy.id)
        db.session.add(carrier)
        db.session.flush()
        row = cdr_row(account.account_number, "2.1", 20)
        row.carrier = str(carrier.id)                               # CDR(carrier), a column cdr_pgsql fills
        db.session.add_all([row, cdr_row(account.account_number, "2.2", 20)])
        db.session.commit()
        carrier_id = carrier.id
    assert reconcile_switch_cdrs(now=T + timedelta(hours=1))["recovered"] == 2
    db.session.commit()
    with unscoped():
        got = {c.uniqueid: (c.carrier_id, c.carrier_cost) for c in db.session.execute(select(Call)).scalars()}
    assert got["2.1"] == (carrier_id, Decimal("0.20"))               # 20 s at the carrier's 0.60 a minute
    assert got["2.2"] == (None, None)
