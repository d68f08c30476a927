"""Rates Manager (/reseller/rates): sheets and rows, copy, delete while in use, buy sheets."""
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.rating.models import Rate, RateSheet
from tenants.models import Tenant
from tenants.scope import unscoped
from tests.integration.rating_support import fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture

ROW = {"prefix": "44", "country": "GB", "description": "United Kingdom", "rate_per_minute": "0.0123",
       "connect_fee": "0", "first_block": "30", "increment": "6", "minimum_charge": "0", "effective_from": ""}


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


def sheet_of(sheet_id) -> RateSheet:
    db.session.rollback()
    with unscoped():
        return db.session.execute(select(RateSheet).where(RateSheet.id == sheet_id)
                                  .execution_options(populate_existing=True)).scalar_one_or_none()


def rates_of(sheet_id) -> list[Rate]:
    db.session.rollback()
    with unscoped():
        return list(db.session.execute(select(Rate).where(Rate.rate_sheet_id == sheet_id)
                                       .order_by(Rate.prefix, Rate.effective_from)
                                       .execution_options(populate_existing=True)).scalars())


def sheet_count() -> int:
    db.session.rollback()
    with unscoped():
        return db.session.scalar(select(func.count()).select_from(RateSheet))


def test_a_reseller_creates_a_sheet_adds_edits_and_deletes_rows(world, owner):
    resp = owner.post("/reseller/rates", data={"name": "Retail 2025", "currency": "USD", "description": "Default",
                                               "short_call_seconds": "6", "short_call_charge": "0.02"})
    assert resp.status_code == 303
    sheet_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    sheet = sheet_of(sheet_id)
    assert (sheet.tenant_id, sheet.name, sheet.short_call_seconds, sheet.short_call_charge) == (
        world.a.id, "Retail 2025", 6, Decimal("0.02"))
    version = sheet.version

    assert owner.post(f"/reseller/rates/{sheet_id}/rows", data=ROW).status_code == 303
    (rate,) = rates_of(sheet_id)
    assert (rate.prefix, rate.country, rate.rate_per_minute, rate.first_block, rate.increment) == (
        "44", "GB", Decimal("0.0123"), 30, 6)
    assert rate.effective_from == date.today() or (date.today() - rate.effective_from).days <= 1
    assert sheet_of(sheet_id).version == version + 1

    page = owner.get(f"/reseller/rates/{sheet_id}")
    assert page.status_code == 200 and b"United Kingdom" in page.data and b"0.0123" in page.data

    assert owner.get(f"/reseller/rates/rows/{rate.id}/edit").status_code == 200
    resp = owner.post(f"/reseller/rates/rows/{rate.id}/edit", data=dict(ROW, rate_per_minute="0,02",
                                                                          effective_from="2000-01-01"))
    assert resp.status_code == 303
    (rate,) = rates_of(sheet_id)
    assert (rate.rate_per_minute, rate.effective_from) == (Decimal("0.02"), date(2000, 1, 1))
    assert sheet_of(sheet_id).version == version + 2

    assert owner.post(f"/reseller/rates/rows/{rate.id}/delete").status_code == 303
    assert rates_of(sheet_id) == [] and sheet_of(sheet_id).version == version + 3


def test_a_new_price_can_be_scheduled_beside_todays(world, owner):
    sheet_id = make_sheet(world.a, [("44", "GB", "0.10")])
    resp = owner.post(f"/reseller/rates/{sheet_id}/rows", data=dict(ROW, rate_per_minute="0.12",
                                                                    effective_from="2031-01-01"))
    assert resp.status_code == 303
    assert [(r.effective_from, r.rate_per_minute) for r in rates_of(sheet_id)] == [
        (date(2000, 1, 1), Decimal("0.10")), (date(2031, 1, 1), Decimal("0.12"))]
    # the same prefix and date twice is refused next to the date field
    resp = owner.post(f"/reseller/rates/{sheet_id}/rows", data=dict(ROW, effective_from="2031-01-01"))
    assert resp.status_code == 422 and b"already has a price from 2031-01-01" in resp.data
    assert len(rates_of(sheet_id)) == 2


@pytest.mark.parametrize("field, value, message", [
    ("prefix", "", b"A prefix is required"),
    ("prefix", "020", b"cannot start with 0"),
    ("prefix", "44a", b"Digits only"),
    ("country", "UK", b"the United Kingdom is GB"),
    ("rate_per_minute", "", b"Rate per minute is required"),
    ("rate_per_minute", "abc", "“abc” is not a number".encode()),
    ("rate_per_minute", "-1", b"cannot be negative"),
    ("rate_per_minute", "0.1234567", b"at most 6 decimal places"),
    ("connect_fee", "100000000", b"must be less than"),
    ("first_block", "x", b"whole number of seconds"),
    ("increment", "0", b"Increment must be at least 1 s"),
    ("effective_from", "31/12/2030", b"A date as YYYY-MM-DD"),
])
def test_bad_row_input_is_reported_next_to_the_field_and_nothing_is_written(world, owner, field, value, message):
    sheet_id = make_sheet(world.a)
    resp = owner.post(f"/reseller/rates/{sheet_id}/rows", data=dict(ROW, **{field: value}))
    assert resp.status_code == 422
    assert message in resp.data
    assert f'id="{field}-error"'.encode() in resp.data
    assert rates_of(sheet_id) == [] and sheet_of(sheet_id).version == 1


def test_bad_sheet_input_is_reported_and_a_duplicate_name_refused(world, owner):
    make_sheet(world.a, name="Retail")
    for data, message in (({"name": "", "currency": "USD"}, b"Give the rate sheet a name."),
                          ({"name": "retail", "currency": "USD"}, b"already has this name"),
                          ({"name": "X", "currency": "USD", "short_call_charge": "x"}, "“x” is not a number".encode())):
        resp = owner.post("/reseller/rates", data=data)
        assert resp.status_code == 422 and message in resp.data
    assert sheet_count() == 1


def test_editing_a_sheet_bumps_its_version_and_a_used_sheet_keeps_its_currency(world, owner):
    sheet_id = make_sheet(world.a, [("44", "GB", "0.1")], name="Retail")
    resp = owner.post(f"/reseller/rates/{sheet_id}/edit", data={"name": "Retail EU", "currency": "USD",
                                                              "short_call_seconds": "0", "short_call_charge": "0"})
    assert resp.status_code == 303 and sheet_of(sheet_id).name == "Retail EU" and sheet_of(sheet_id).version == 2
    give_plan(world.account_a, sheet_id)
    resp = owner.post(f"/reseller/rates/{sheet_id}/edit", data={"name": "Retail EU", "currency": "EUR",
                                                              "short_call_charge": "0"})
    assert resp.status_code == 422 and b"currency cannot change" in resp.data
    assert sheet_of(sheet_id).currency == "USD"


def test_copying_a_sheet_copies_every_row_under_a_new_name(world, owner):
    sheet_id = make_sheet(world.a, [("44", "GB", "0.1"), ("44", "GB", "0.2", "0", 1, 1, "0", date(2031, 1, 1)),
                                    ("33", "FR", "0.05")], name="Retail", short_call=(6, "0.02"))
    resp = owner.post(f"/reseller/rates/{sheet_id}/copy", data={"name": "Retail"})
    assert resp.status_code == 422 and b"already has this name" in resp.data
    resp = owner.post(f"/reseller/rates/{sheet_id}/copy", data={"name": "Retail 2"})
    assert resp.status_code == 303
    copy_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    copy = sheet_of(copy_id)
    assert (copy.name, copy.tenant_id, copy.short_call_seconds) == ("Retail 2", world.a.id, 6)

    def key(r):
        return (r.prefix, r.country, r.rate_per_minute, r.effective_from)
    assert [key(r) for r in rates_of(copy_id)] == [key(r) for r in rates_of(sheet_id)]
    assert all(r.tenant_id == world.a.id for r in rates_of(copy_id))


def test_a_sheet_in_use_by_a_plan_or_a_sub_reseller_cannot_be_deleted(world, owner):
    used = make_sheet(world.a, [("44", "GB", "0.1")], name="Used by a plan")
    give_plan(world.account_a, used)
    resp = owner.post(f"/reseller/rates/{used}/delete")
    assert resp.status_code == 409
    assert "“Used by a plan” is used by the service plan of 1 account".encode() in resp.data
    bought = make_sheet(world.a, name="Wholesale")
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == world.a_sub.id)).scalar_one().buy_rate_sheet_id = bought
        db.session.commit()
    resp = owner.post(f"/reseller/rates/{bought}/delete")
    assert resp.status_code == 409 and b"Reseller A North (buys at it)" in resp.data
    assert sheet_of(used) is not None and sheet_of(bought) is not None

    free = make_sheet(world.a, [("44", "GB", "0.1")], name="Unused")
    resp = owner.post(f"/reseller/rates/{free}/delete")
    assert resp.status_code == 303 and sheet_of(free) is None and rates_of(free) == []


def test_deleting_rows_that_rated_calls_keeps_the_calls(world, owner):
    from tests.integration.rating_support import add_call, call
    from app.rating.cdr import rate_calls
    from tenants.scope import tenant_scope

    sheet_id = make_sheet(world.a, [("44", "GB", "0.6", "0", 60, 60)], name="Old")
    plan = give_plan(world.account_a, sheet_id)
    call_id = add_call(world.account_a, "442071234567", 30)
    with tenant_scope(world.a.id):
        rate_calls([call_id])
        db.session.commit()
    priced_by = call(call_id).rate_id
    (rate,) = rates_of(sheet_id)
    assert priced_by == rate.id
    assert owner.post(f"/reseller/rates/rows/{rate.id}/delete").status_code == 303
    assert rates_of(sheet_id) == []
    # The call keeps its price and the id of the row that priced it, as history.
    assert call(call_id).rate_id == priced_by and call(call_id).cost == Decimal("0.60")
    assert plan


def test_rows_are_searched_by_prefix_country_or_description_and_paginated(world, owner):
    rows = [(str(4400 + n), "GB", "0.01") for n in range(120)] + [("33", "FR", "0.02"), ("49", "DE", "0.03")]
    sheet_id = make_sheet(world.a, rows)
    page = owner.get(f"/reseller/rates/{sheet_id}?q=44&size=50")
    assert b"of 100 rows" in page.data and b"Page 1 of 2" in page.data     # 4400-4499 (4500-4519 are 45…)
    page = owner.get(f"/reseller/rates/{sheet_id}?q=44&size=50&page=2")
    assert "Showing 51–100 of 100".encode() in page.data
    page = owner.get(f"/reseller/rates/{sheet_id}?q=441")
    assert b"of 10 rows" in page.data
    page = owner.get(f"/reseller/rates/{sheet_id}?q=fr")
    assert b"of 1 row" in page.data and b">33<" in page.data
    page = owner.get(f"/reseller/rates/{sheet_id}?q=DE%2049")
    assert b"of 1 row" in page.data                                   # descriptions: "DE 49"
    page = owner.get(f"/reseller/rates/{sheet_id}?q=Narnia")
    assert b"No rows match" in page.data
    # htmx gets the rows alone
    part = owner.get(f"/reseller/rates/{sheet_id}?q=49", headers={"HX-Request": "true", "HX-Target": "rate-rows"})
    assert part.data.lstrip().startswith(b'<div id="rate-rows">') and b">49<" in part.data


def test_another_resellers_sheets_and_rows_answer_404(world, owner, new_client, login):
    foreign = make_sheet(world.b, [("44", "GB", "0.1")])
    (rate,) = rates_of(foreign)
    for method, url in (("get", f"/reseller/rates/{foreign}"), ("post", f"/reseller/rates/{foreign}/edit"),
                        ("post", f"/reseller/rates/{foreign}/rows"), ("post", f"/reseller/rates/{foreign}/delete"),
                        ("post", f"/reseller/rates/{foreign}/copy"), ("get", f"/reseller/rates/{foreign}/export.csv"),
                        ("get", f"/reseller/rates/rows/{rate.id}/edit"), ("post", f"/reseller/rates/rows/{rate.id}/delete")):
        assert getattr(owner, method)(url, data=ROW if method == "post" else None).status_code == 404, url
    # a parent does not manage its sub-reseller's sheets either; the sub cannot see its parent's
    sub_sheet = make_sheet(world.a_sub)
    assert owner.get(f"/reseller/rates/{sub_sheet}").status_code == 404
    sub = login(new_client(), world.owner_a_sub)
    assert sub.get(f"/reseller/rates/{make_sheet(world.a)}").status_code == 404
    assert sheet_of(foreign).version == 1 and len(rates_of(foreign)) == 1


def test_customers_and_admins_cannot_open_the_rates_manager(world, new_client, login):
    sheet_id = make_sheet(world.a)
    for user in (world.customer_a, world.admin):
        client = login(new_client(), user)
        assert client.get("/reseller/rates").status_code == 403
        assert client.post(f"/reseller/rates/{sheet_id}/rows", data=ROW).status_code == 403
    anonymous = new_client()
    assert anonymous.get("/reseller/rates").headers["Location"].startswith("/reseller/login")


def test_the_owner_assigns_a_buy_sheet_to_a_sub_reseller_and_staff_cannot(world, owner, new_client, login):
    sheet_id = make_sheet(world.a, name="Wholesale")
    page = owner.get("/reseller/rates")
    assert b"Reseller A North" in page.data and b"Wholesale" in page.data
    field = f"t{world.a_sub.id}-rate_sheet_id"
    staff = login(new_client(), world.staff_a)
    assert staff.post(f"/reseller/resellers/{world.a_sub.id}/buy-sheet", data={field: sheet_id}).status_code == 403
    resp = owner.post(f"/reseller/resellers/{world.a_sub.id}/buy-sheet", data={field: sheet_id})
    assert resp.status_code == 303

    def buy_sheet(tenant_id):
        db.session.rollback()
        with unscoped():
            return db.session.scalar(select(Tenant.buy_rate_sheet_id).where(Tenant.id == tenant_id))
    assert buy_sheet(world.a_sub.id) == sheet_id
    # another reseller's sheet, or a sheet of the sub-reseller itself, is refused
    for other in (make_sheet(world.b), make_sheet(world.a_sub)):
        owner.post(f"/reseller/resellers/{world.a_sub.id}/buy-sheet", data={field: other})
        assert buy_sheet(world.a_sub.id) == sheet_id
    # a sheet in another currency than the sub-reseller's: refused, with the reason
    euro = make_sheet(world.a, name="Wholesale EUR", currency="EUR")
    page = owner.post(f"/reseller/resellers/{world.a_sub.id}/buy-sheet", data={field: euro}, follow_redirects=True)
    assert ("Reseller A North: “Wholesale EUR” is in EUR, but this sub-reseller bills in USD: choose a USD sheet."
            in page.get_data(as_text=True))
    assert buy_sheet(world.a_sub.id) == sheet_id
    # only direct sub-resellers; not B, not A itself
    assert owner.post(f"/reseller/resellers/{world.b.id}/buy-sheet", data={f"t{world.b.id}-rate_sheet_id": sheet_id}).status_code == 404
    assert owner.post(f"/reseller/resellers/{world.a.id}/buy-sheet", data={f"t{world.a.id}-rate_sheet_id": sheet_id}).status_code == 404
    assert owner.post(f"/reseller/resellers/{world.a_sub.id}/buy-sheet", data={field: "0"}).status_code == 303
    assert buy_sheet(world.a_sub.id) is None


def test_a_rate_row_always_belongs_to_its_sheets_tenant(world):
    """The (sheet, tenant) foreign key: a row filed under another tenant than its sheet's is refused
    by the database itself, and deleting the sheet takes its rows along."""
    from sqlalchemy.exc import IntegrityError

    sheet_id = make_sheet(world.a, [("44", "GB", "0.01")])
    with unscoped():
        db.session.add(Rate(tenant_id=world.b.id, rate_sheet_id=sheet_id, prefix="33", country="FR",
                            description="France", rate_per_minute=Decimal("0.02")))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        assert [r.prefix for r in rates_of(sheet_id)] == ["44"]
        db.session.execute(RateSheet.__table__.delete().where(RateSheet.id == sheet_id))
        db.session.commit()
    assert rates_of(sheet_id) == []
