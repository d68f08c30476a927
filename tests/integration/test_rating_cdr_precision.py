"""Call charge precision in the database (issue 14): the CDR writer (`store_rated_calls`) and
the rating job (`rate_calls`) charge every call what `bundles.rate_call` / `cost.call_cost`
give at the reseller's precision, the ledger and the balance keep it, and the buy price
follows the parent's precision."""
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app import ledger
from app.calls.models import Call
from app.extensions import db
from app.money import call_charge_places
from app.rating.bundles import rate_call
from app.rating.cdr import CallRecord, rate_calls, store_rated_calls
from app.rating.cost import ShortCallCharge, Tariff
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import (add_call, balance, call_entries, fresh_index_cache, give_plan,
                                              make_sheet)

assert fresh_index_cache  # autouse fixture
UK = "442071234567"


def no_mismatch():
    with unscoped():
        return ledger.balance_mismatches() == []


def micros(lo, hi):
    return st.integers(lo, hi).map(lambda n: Decimal(n).scaleb(-6))


@st.composite
def rate_rows(draw):
    """A sheet row (and its Tariff) with odd sub-cent amounts: every precision gives another cost."""
    rate, connect, minimum = draw(micros(0, 300_000)), draw(micros(0, 20_000)), draw(micros(0, 15_000))
    fb, inc = draw(st.sampled_from([0, 1, 6, 30])), draw(st.sampled_from([1, 6, 60]))
    row = ("44", "GB", str(rate), str(connect), fb, inc, str(minimum))
    return row, Tariff("44", "GB", "", rate, connect, fb, inc, minimum)


scenario = st.tuples(
    st.sampled_from([2, 3, 4]),                                          # the reseller's setting
    st.sampled_from(["USD", "KWD", "JPY"]),
    rate_rows(),
    st.one_of(st.just((0, "0")), st.tuples(st.integers(1, 20), micros(0, 30_000).map(str))),   # short call
    st.sampled_from([0, 0, 1, 2]),                                       # bundle minutes for GB
    st.lists(st.one_of(st.integers(0, 40), st.integers(0, 900)), min_size=1, max_size=25),
)


# No shrinking: each example writes to the database, and a failure prints its example anyway.
@settings(max_examples=24, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario)
def test_the_cdr_writer_and_the_rating_job_charge_what_rate_call_gives_at_the_precision(
        app, make_tenant, make_account, s):
    setting, currency, (row, tariff), short_call, minutes, durations = s
    places = call_charge_places(setting, currency)
    tenant = make_tenant(call_charge_places=setting, currency=currency)
    writer, job = (make_account(tenant, credit="1000", currency=currency) for _ in range(2))
    for account in (writer, job):
        give_plan(account, make_sheet(tenant, [row], currency=currency, short_call=short_call), [("GB", minutes)])
    start = datetime(2025, 6, 2, 9)
    records = [CallRecord(writer.id, "pbxp", f"p{tenant.id}.{n:03d}", UK, start + timedelta(seconds=n), d)
               for n, d in enumerate(durations)]
    with tenant_scope(tenant.id):
        store_rated_calls(records)
        db.session.commit()
    ids = [add_call(job, UK, d, start + timedelta(seconds=n)) for n, d in enumerate(durations)]
    with tenant_scope(tenant.id):
        rate_calls(ids)
        db.session.commit()

    short = ShortCallCharge(short_call[0], Decimal(short_call[1])) if short_call[0] else None
    left, expected = 60 * minutes, []
    for d in durations:
        r = rate_call(d, tariff, currency, bundle_remaining_seconds=left, short_call=short, places=places)
        left -= r.bundle_seconds
        expected.append(r.cost)
    with unscoped():
        written = [c.cost for c in db.session.execute(
            select(Call).where(Call.account_id == writer.id).order_by(Call.uniqueid)).scalars()]
        rated = [c.cost for c in db.session.execute(
            select(Call).where(Call.account_id == job.id).order_by(Call.started_at, Call.id)).scalars()]
    assert written == expected and rated == expected
    charged = sum(expected, Decimal(0))
    for account in (writer, job):
        entries = call_entries(account.id)
        assert sorted(a for _, a in entries) == sorted(-c for c in expected if c > 0)
        assert all(a == a.quantize(Decimal(1).scaleb(-places)) for _, a in entries)   # no finer than the places
        assert balance(account.id) == Decimal(1000) - charged
    assert no_mismatch()


def test_a_twelve_second_call_at_half_a_cent_a_minute_is_free_at_two_places_and_charged_at_four(
        app, make_tenant, make_account):
    """The issue's example, through the CDR writer and into the ledger and the balance."""
    results = {}
    for setting in (2, 4):
        tenant = make_tenant(call_charge_places=setting)
        account = make_account(tenant, credit="1.00")
        give_plan(account, make_sheet(tenant, [("44", "GB", "0.005", "0", 1, 1)]))
        with tenant_scope(tenant.id):
            store_rated_calls([CallRecord(account.id, "pbxq", f"q{tenant.id}.{n}", UK, datetime(2025, 6, 2, 9, n), 12)
                               for n in range(3)])
            db.session.commit()
        results[setting] = ([a for _, a in call_entries(account.id)], balance(account.id))
    assert results[2] == ([], Decimal("1.00"))                     # three free calls: no ledger entry
    assert results[4] == ([Decimal("-0.0010")] * 3, Decimal("0.9970"))
    assert no_mismatch()


def test_the_buy_price_is_rounded_at_the_parents_precision(app, make_tenant, make_account):
    """The reseller's cost price is what its parent charges it: at the parent's precision."""
    from tenants.models import Tenant

    parent = make_tenant(call_charge_places=4)
    child = make_tenant(parent=parent, call_charge_places=2)
    buy = make_sheet(parent, [("44", "GB", "0.0123")])
    with unscoped():
        db.session.get(Tenant, child.id).buy_rate_sheet_id = buy
        db.session.commit()
    account = make_account(child, credit="10")
    give_plan(account, make_sheet(child, [("44", "GB", "0.0500")]))
    call_id = add_call(account, UK, 47)
    with tenant_scope(child.id):
        rate_calls([call_id])
        db.session.commit()
    with unscoped():
        c = db.session.get(Call, call_id)
        # sell: 47 × 0.05/60 = 0.0391… -> 0.04 (the child's cent); buy: 47 × 0.0123/60 = 0.009635 -> 0.0096
        assert (c.cost, c.buy_cost) == (Decimal("0.04"), Decimal("0.0096"))
