"""Each rated call records the carrier that carried it (the dialplan's CDR(carrier)) and what the
platform pays that carrier at its buy sheet (issue 19, point 2)."""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from app.calls.models import Call
from app.extensions import db
from app.rating.cdr import CallRecord, rate_calls, store_rated_calls
from app.routing.models import Carrier
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import add_call, call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture
UK = "442071234567"
UK_ROW = ("44", "GB", "0.10", "0.05", 30, 6)


def _carrier(platform, name, rows):
    sheet = make_sheet(platform, rows, name=f"{name} buy") if rows else None
    with unscoped():
        c = Carrier(tenant_id=platform.id, name=name, host=f"{name.lower()}.example", buy_rate_sheet_id=sheet)
        db.session.add(c)
        db.session.commit()
        return c.id


def test_stored_cdrs_keep_their_carrier_and_the_platforms_cost_at_its_buy_sheet(app, platform, make_tenant, make_account):
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 0)])
    cheap = _carrier(platform, "Cheap", [("44", "GB", "0.012", "0", 1, 1)])
    unpriced = _carrier(platform, "Unpriced", None)
    fr_only = _carrier(platform, "France", [("33", "FR", "0.01", "0", 1, 1)])
    start = datetime(2025, 5, 10, 12)
    records = [CallRecord.of(account.id, "pbx1", "c.1", UK, start, 100, start, start, "ANSWERED", "1000", "c.1",
                             carrier_id=str(cheap)),
               CallRecord.of(account.id, "pbx1", "c.2", UK, start, 0, None, start, "BUSY", "1000", "c.2",
                             carrier_id=cheap),
               CallRecord.of(account.id, "pbx1", "c.3", UK, start, 60, start, start, "ANSWERED", "1000", "c.3",
                             carrier_id=unpriced),
               CallRecord.of(account.id, "pbx1", "c.4", UK, start, 60, start, start, "ANSWERED", "1000", "c.4",
                             carrier_id=fr_only),
               CallRecord.of(account.id, "pbx1", "c.5", UK, start, 60, start, start, "ANSWERED", "1000", "c.5",
                             carrier_id="")]
    with tenant_scope(tenant.id, descendants=False):
        store_rated_calls(records)
        db.session.commit()
    with unscoped():
        got = {c.uniqueid: (c.carrier_id, c.carrier_cost, c.cost) for c in db.session.execute(select(Call)).scalars()}
    assert got["c.1"] == (cheap, Decimal("0.02"), Decimal("0.22"))     # 100 s at 0.012/min: 0.02 at 2 places
    assert got["c.2"][:2] == (cheap, Decimal("0"))                      # unanswered: costs nothing
    assert got["c.3"][:2] == (unpriced, None)                           # no buy sheet: unknown, not free
    assert got["c.4"][:2] == (fr_only, None)                            # no buy rate for the number
    assert got["c.5"][:2] == (None, None)                               # no carrier recorded


def test_a_stored_call_with_a_carrier_gets_its_cost_when_rated_later(app, platform, make_tenant, make_account):
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == platform.id)).scalar_one().call_charge_places = 4
        db.session.commit()
    tenant = make_tenant()
    account = make_account(tenant, credit="10")
    give_plan(account, make_sheet(tenant, [UK_ROW]), [("GB", 0)])
    carrier = _carrier(platform, "Wholesale", [("44", "GB", "0.0123", "0", 1, 1)])
    call_id = add_call(account, UK, 90)
    with unscoped():
        db.session.execute(select(Call).where(Call.id == call_id)).scalar_one().carrier_id = carrier
        db.session.commit()
    with tenant_scope(tenant.id, descendants=False):
        rate_calls([call_id])
        db.session.commit()
    c = call(call_id)
    assert (c.carrier_id, c.carrier_cost) == (carrier, Decimal("0.0185"))   # 90 s at 0.0123/min, 4 places
