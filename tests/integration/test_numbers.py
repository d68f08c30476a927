"""DIDs: platform CSV import (all or nothing), allocation to resellers, reseller prices,
assignment to accounts and release."""
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from app.numbers.operations import DidImportError, Number, parse_csv
from tenants.scope import unscoped

from onboarding_support import make_numbers, onboard_account, row_counts

GOOD_CSV = "number,country,setup,monthly\n+442079460101,GB,1.00,2.50\n+12025550123,US,0,1.25\n+33 1 23 45 67 89,FR,2,3\n"


@pytest.fixture
def admin(world, new_client, login):
    return login(new_client(), world.admin)


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


def _numbers():
    with unscoped():
        db.session.expire_all()
        return {n.number: n for n in db.session.execute(select(Number)).scalars()}


# --- parsing -----------------------------------------------------------------------------------

def test_parse_accepts_good_lines_and_normalises_to_e164():
    rows = parse_csv(GOOD_CSV)
    assert [(r.line, r.number, r.country, r.setup_cost, r.monthly_cost) for r in rows] == [
        (2, "+442079460101", "GB", Decimal("1.00"), Decimal("2.50")),
        (3, "+12025550123", "US", Decimal("0"), Decimal("1.25")),
        (4, "+33123456789", "FR", Decimal("2"), Decimal("3")),
    ]


def test_parse_reports_every_bad_line_with_its_number():
    text = ("+442079460101,GB,1,2\n"
            "+442079460102,GB,1\n"           # 3 columns
            "hello,GB,1,2\n"                 # not a number
            "+442079460103,XX,1,2\n"         # bad country
            "+442079460104,FR,1,2\n"         # number of another country
            "+442079460105,GB,-1,abc\n"      # bad prices
            "+442079460101,GB,1,2\n")        # duplicate of line 1
    with pytest.raises(DidImportError) as e:
        parse_csv(text)
    lines = dict(e.value.errors)
    assert sorted(lines) == [2, 3, 4, 5, 6, 7]
    assert "Expected 4 columns" in lines[2]
    assert "not a phone number" in lines[3] or "not a valid phone number" in lines[3]
    assert "two-letter country code" in lines[4]
    assert "is a number of GB, not FR" in lines[5]
    assert "cannot be negative" in lines[6] and "“abc” is not a number." in lines[6]
    assert "also on line 1" in lines[7]


# --- platform admin -----------------------------------------------------------------------------

def test_the_admin_imports_a_csv_into_the_platform_inventory(world, admin):
    resp = admin.post("/admin/numbers/import", data={"text": GOOD_CSV})
    assert resp.status_code == 303
    numbers = _numbers()
    assert set(numbers) == {"+442079460101", "+12025550123", "+33123456789"}
    assert all(n.status == "platform" and n.tenant_id == world.platform.id for n in numbers.values())


def test_an_uploaded_file_works_too(world, admin):
    from io import BytesIO

    resp = admin.post("/admin/numbers/import", data={"file": (BytesIO(GOOD_CSV.encode("utf-8-sig")), "dids.csv")},
                      content_type="multipart/form-data")
    assert resp.status_code == 303 and len(_numbers()) == 3


def test_one_bad_line_imports_nothing_and_every_bad_line_is_listed(world, admin):
    before = row_counts()
    resp = admin.post("/admin/numbers/import", data={"text": GOOD_CSV + "+4420,GB,1,1\nxyz,US,1,1\n"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Nothing was imported: 2 lines to fix." in html
    assert "Line 5:" in html and "Line 6:" in html
    assert row_counts() == before


def test_numbers_already_in_the_inventory_are_refused(world, admin):
    admin.post("/admin/numbers/import", data={"text": GOOD_CSV})
    resp = admin.post("/admin/numbers/import", data={"text": "+442079460101,GB,1,1\n"})
    assert resp.status_code == 422 and "already in the inventory" in resp.get_data(as_text=True)


def test_allocating_numbers_to_a_reseller_makes_them_its_spare_numbers(world, admin, owner, new_client, login):
    admin.post("/admin/numbers/import", data={"text": GOOD_CSV})
    ids = [n.id for n in _numbers().values()]
    assert admin.post("/admin/numbers/allocate", data={"number_ids": ids[:2], "tenant_id": world.a.id}).status_code == 303
    numbers = {n.id: n for n in _numbers().values()}
    assert all(numbers[i].status == "spare" and numbers[i].tenant_id == world.a.id for i in ids[:2])
    assert numbers[ids[0]].sell_monthly == numbers[ids[0]].monthly_cost   # priced at cost until the reseller sets a price
    html = owner.get("/reseller/numbers").get_data(as_text=True)
    assert "+44 20 7946 0101" in html
    b = login(new_client(), world.owner_b)
    assert "+44 20 7946 0101" not in b.get("/reseller/numbers").get_data(as_text=True)
    # Allocating twice, or a number no longer in the inventory, is refused with a message.
    resp = admin.post("/admin/numbers/allocate", data={"number_ids": ids[:1], "tenant_id": world.b.id})
    assert resp.status_code == 422 and "no longer in the platform inventory" in resp.get_data(as_text=True)


def test_allocation_needs_numbers_and_a_reseller(world, admin):
    resp = admin.post("/admin/numbers/allocate", data={"tenant_id": "0"})
    assert resp.status_code == 422 and "Choose the reseller." in resp.get_data(as_text=True)
    resp = admin.post("/admin/numbers/allocate", data={"tenant_id": world.a.id})
    assert resp.status_code == 422 and "Tick at least one number." in resp.get_data(as_text=True)


def test_a_spare_number_can_be_taken_back(world, admin):
    number_id = make_numbers(world.a, 1)[0]
    assert admin.post(f"/admin/numbers/{number_id}/reclaim", data={}).status_code == 303
    n = next(iter(_numbers().values()))
    assert (n.status, n.tenant_id) == ("platform", world.platform.id)


# --- reseller -----------------------------------------------------------------------------------

def test_the_reseller_sets_its_own_prices(world, owner):
    number_id = make_numbers(world.a, 1)[0]
    assert owner.post(f"/reseller/numbers/{number_id}/price", data={"sell_setup": "5", "sell_monthly": "7.25"}).status_code == 303
    n = next(iter(_numbers().values()))
    assert (n.sell_setup, n.sell_monthly) == (Decimal("5"), Decimal("7.25"))
    resp = owner.post(f"/reseller/numbers/{number_id}/price", data={"sell_setup": "x", "sell_monthly": "1"},
                      follow_redirects=True)
    assert "not changed" in resp.get_data(as_text=True)


def test_the_reseller_assigns_a_spare_number_to_an_account_and_an_extension(world, owner):
    acct = onboard_account(world.a, users=2)
    number_id = make_numbers(world.a, 1, setup="1.00", monthly="3.00")[0]
    assert owner.get(f"/reseller/numbers/{number_id}/assign").status_code == 200
    resp = owner.post(f"/reseller/numbers/{number_id}/assign",
                      data={"account_id": str(acct), "extension_number": "9999"})
    assert resp.status_code == 422 and "has no extension 9999" in resp.get_data(as_text=True)
    resp = owner.post(f"/reseller/numbers/{number_id}/assign",
                      data={"account_id": str(acct), "extension_number": str(world.a.base_extension + 1)})
    assert resp.status_code == 303
    n = next(iter(_numbers().values()))
    assert (n.status, n.account_id) == ("assigned", acct) and n.extension_id is not None
    with unscoped():
        kinds = db.session.execute(select(LedgerEntry.kind, LedgerEntry.idempotency_key)
                                   .where(LedgerEntry.account_id == acct, LedgerEntry.kind == "number_charge")).all()
        assert any(key.endswith(":setup") for _, key in kinds)
        assert balance_mismatches() == []
    assert owner.post(f"/reseller/numbers/{number_id}/release", data={}).status_code == 303
    assert next(iter(_numbers().values())).status == "spare"


def test_a_reseller_cannot_touch_another_resellers_numbers(world, owner):
    foreign = make_numbers(world.b, 1)[0]
    assert owner.post(f"/reseller/numbers/{foreign}/price", data={"sell_setup": "0", "sell_monthly": "0"}).status_code == 404
    assert owner.get(f"/reseller/numbers/{foreign}/assign").status_code == 404
    assert owner.post(f"/reseller/numbers/{foreign}/release", data={}).status_code == 404


def test_a_parent_reseller_does_not_manage_its_sub_resellers_numbers(world, owner):
    subs = make_numbers(world.a_sub, 1)[0]
    assert owner.get(f"/reseller/numbers/{subs}/assign").status_code == 404


def test_platform_numbers_are_invisible_to_resellers(world, owner):
    platform_number = make_numbers(world.platform, 1, status="platform")[0]
    assert owner.get(f"/reseller/numbers/{platform_number}/assign").status_code == 404


@pytest.mark.parametrize("who,url", [
    ("owner_a", "/admin/numbers"), ("customer_a", "/admin/numbers"),
    ("admin", "/reseller/numbers"), ("customer_a", "/reseller/numbers"), ("admin", "/reseller/templates"),
])
def test_number_pages_answer_403_to_other_portals(world, new_client, login, who, url):
    assert login(new_client(), getattr(world, who)).get(url).status_code == 403


def test_two_requests_racing_for_one_number_assign_it_once(app, world):
    """Two staff assign the same spare number to two accounts at the same moment."""
    import threading

    from app.conflicts import FieldError
    from app.numbers import operations as dids
    from tenants.scope import tenant_scope

    a1, a2 = onboard_account(world.a), onboard_account(world.a)
    number_id = make_numbers(world.a, 1)[0]
    barrier, results = threading.Barrier(2), {}
    tenant_id = world.a.id          # read here: ORM objects are not shared across threads

    def assign(account_id):
        with app.app_context(), tenant_scope(tenant_id):
            account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
            barrier.wait(timeout=10)
            try:
                dids.assign(number_id, account)
                db.session.commit()
                results[account_id] = "ok"
            except FieldError as e:
                db.session.rollback()
                results[account_id] = e.message
            finally:
                db.session.remove()

    threads = [threading.Thread(target=assign, args=(a,)) for a in (a1, a2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values(), key=len)[0] == "ok"
    assert any("was just assigned to another account" in v for v in results.values())
    with unscoped():
        owner_id = db.session.execute(select(Number.account_id).where(Number.id == number_id)).scalar_one()
        assert results[owner_id] == "ok"
        charged = db.session.execute(select(LedgerEntry.account_id).where(LedgerEntry.kind == "number_charge")
                                     .distinct()).scalars().all()
        assert charged == [owner_id]
        assert balance_mismatches() == []


def test_the_numbers_page_offers_assign_for_spare_and_release_for_assigned_numbers(world, owner):
    spare = make_numbers(world.a, 1)[0]
    assigned = make_numbers(world.a, 1)[0]
    acct = onboard_account(world.a, number_ids=[assigned])
    html = owner.get("/reseller/numbers").get_data(as_text=True)
    assert f"/reseller/numbers/{spare}/assign" in html and f"/reseller/numbers/{spare}/release" not in html
    assert f"/reseller/numbers/{assigned}/release" in html and f"/reseller/numbers/{assigned}/assign" not in html
    assert f"/reseller/accounts/{acct}#numbers" in html
    assert f"/reseller/numbers/{assigned}/assign" not in owner.get("/reseller/numbers?status=spare").get_data(as_text=True)
