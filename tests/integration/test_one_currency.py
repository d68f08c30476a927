"""One currency per account, everywhere (issue 14, point 2): rate sheets in the account's
currency (wizard, account edit, templates); currency codes from one list (no XXX); a
reseller's currency fixed once it has accounts or rate sheets; DID sell prices in the
reseller's currency; dashboards and reports never add two currencies."""
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import money
from app.accounts.models import Account
from app.billing.account_templates import AccountTemplate
from app.billing.models import ServicePlan
from app.conflicts import FieldError
from app.extensions import db
from app.rating.cdr import rate_calls
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped

from onboarding_support import make_numbers, onboard_account, row_counts, step1, wizard
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture

URL = "/reseller/accounts/{}"
PLAN = "/reseller/accounts/new/plan"


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


def _account(account_id) -> Account:
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()


def _plan_sheet(account_id):
    with unscoped():
        return db.session.scalar(select(ServicePlan.rate_sheet_id).where(ServicePlan.account_id == account_id))


def _edit_data(owner, account_id, **over):
    from test_account_page import _edit_data as edit_data

    return edit_data(owner.get(URL.format(account_id)).get_data(as_text=True), **over)


# --- the list of currencies ----------------------------------------------------------------------

def test_the_currency_list_is_iso_4217_tender_only():
    codes = money.currency_codes()
    for code in ("USD", "EUR", "GBP", "JPY", "XOF", "XAF", "XCD", "XPF", "KWD"):
        assert code in codes
    for code in ("XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA",
                 "BOV", "CHE", "USN"):
        assert code not in codes
    for code in ("DEM", "FRF", "HRK", "ANG"):          # withdrawn: not on the active list
        assert code not in codes
    assert list(codes) == sorted(codes)
    with pytest.raises(money.MoneyError, match="not a currency we bill in"):
        money.check_currency("XXX")
    assert money.check_currency(" eur ") == "EUR"


def test_every_currency_field_offers_the_same_list(world, owner, new_client, login):
    import re

    expected = list(money.currency_codes())
    admin = login(new_client(), world.admin)
    for client, url in ((owner, "/reseller/accounts/new"), (owner, "/reseller/rates"), (owner, "/reseller/resellers"),
                        (admin, "/admin/resellers/new")):
        html = client.get(url).get_data(as_text=True)
        select_html = re.search(r'<select[^>]*name="currency".*?</select>', html, re.S).group(0)
        assert re.findall(r'<option[^>]*value="([A-Z]{3})"', select_html) == expected, url


@pytest.mark.parametrize("code", ["XXX", "XAU", "ZZZ"])
def test_the_domain_refuses_a_code_off_the_list(world, code):
    from app.accounts.operations import create_account
    from app.rating.sheets import create_sheet
    from app.resellers.operations import TenantError, create_tenant

    with tenant_scope(world.a.id):
        with pytest.raises(FieldError) as e:
            create_account(tenant_id=world.a.id, name="X", email="x@x.example", currency=code)
        assert e.value.field == "currency"
        with pytest.raises(FieldError) as e:
            create_sheet(world.a.id, name="X", currency=code)
        assert e.value.field == "currency"
        with pytest.raises(TenantError) as e:
            create_tenant(name="X", slug="x-x-x", parent_id=world.a.id, currency=code)
        assert e.value.field == "currency"
        db.session.rollback()


def test_the_wizard_refuses_a_code_off_the_list(world, owner):
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(currency="XXX"))
    assert resp.status_code == 422
    assert 'id="currency-error">Choose a currency from the list (ISO 4217' in resp.get_data(as_text=True)
    assert row_counts() == before


# --- rate sheets in the account's currency --------------------------------------------------------

def test_the_wizard_lists_and_accepts_only_sheets_in_the_account_currency(world, owner):
    usd = make_sheet(world.a, name="Retail USD")
    eur = make_sheet(world.a, name="Retail EUR", currency="EUR")
    step2 = owner.post("/reseller/accounts/new", data=step1(currency="EUR")).get_data(as_text=True)
    sheets = step2.split('name="rate_sheet_id"')[1].split("</select>")[0]
    assert f'value="{eur}"' in sheets and f'value="{usd}"' not in sheets
    assert "The sheets in EUR, the account&#39;s currency." in step2
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(currency="USD", rate_sheet_id=str(eur)))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="rate_sheet_id-error">“Retail EUR” is in EUR, but the account bills in USD: choose a USD rate sheet.' in html
    assert row_counts() == before
    assert owner.post(PLAN, data=wizard(currency="EUR", rate_sheet_id=str(eur))).status_code == 303


def test_the_account_edit_refuses_a_sheet_in_another_currency(world, owner):
    usd = make_sheet(world.a, name="Retail USD")
    eur = make_sheet(world.a, name="Retail EUR", currency="EUR")
    acct = onboard_account(world.a, rate_sheet_id=usd)
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(owner, acct, rate_sheet_id=str(eur)))
    assert resp.status_code == 422
    assert "“Retail EUR” is in EUR, but the account bills in USD" in resp.get_data(as_text=True)
    assert _plan_sheet(acct) == usd


def test_the_currency_of_an_account_changes_only_with_its_sheet(world, owner):
    usd = make_sheet(world.a, name="Retail USD")
    eur = make_sheet(world.a, name="Retail EUR", currency="EUR")
    acct = onboard_account(world.a, rate_sheet_id=usd, cost_per_user="0", initial_credit="0")
    # The currency alone: the sheet stays in USD.
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(owner, acct, currency="EUR"))
    assert resp.status_code == 422 and "is in USD, but the account bills in EUR" in resp.get_data(as_text=True)
    assert _account(acct).currency == "USD"
    # Both together (no transactions yet): saved.
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(owner, acct, currency="EUR", rate_sheet_id=str(eur)))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert (_account(acct).currency, _plan_sheet(acct)) == ("EUR", eur)


def test_the_domain_refuses_a_currency_its_plan_sheet_is_not_in(world):
    from app.accounts.operations import update_account

    usd = make_sheet(world.a, name="Retail USD")
    acct = onboard_account(world.a, rate_sheet_id=usd, cost_per_user="0", initial_credit="0")
    with tenant_scope(world.a.id):
        account = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        with pytest.raises(FieldError) as e:
            update_account(account, version=account.version, values={"currency": "EUR"})
        assert e.value.field == "currency" and "“Retail USD” is in USD" in e.value.message
        db.session.rollback()


def test_a_template_keeps_its_currency_and_the_wizard_refuses_it_for_another(world, owner):
    usd = make_sheet(world.a, name="Retail USD")
    acct = onboard_account(world.a, rate_sheet_id=usd)
    assert owner.post(URL.format(acct) + "/template", data={"template_name": "Dental pack"}).status_code == 303
    with unscoped():
        tpl = db.session.execute(select(AccountTemplate)).scalar_one()
    assert tpl.values["currency"] == "USD" and tpl.values["rate_sheet_id"] == usd
    page = owner.get(f"/reseller/accounts/new?template_id={tpl.id}").get_data(as_text=True)
    assert '<option selected value="USD">' in page
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(currency="EUR", template_id=str(tpl.id), rate_sheet_id=str(usd)))
    assert resp.status_code == 422 and "is in USD, but the account bills in EUR" in resp.get_data(as_text=True)
    assert row_counts() == before
    assert " USD</td>" in owner.get("/reseller/templates").get_data(as_text=True)


def test_a_template_with_a_sheet_in_another_currency_is_not_saved(world):
    from app.billing.account_templates import save_template

    eur = make_sheet(world.a, name="Retail EUR", currency="EUR")
    with tenant_scope(world.a.id):
        with pytest.raises(FieldError) as e:
            save_template(world.a.id, "Mixed", {"currency": "USD", "rate_sheet_id": eur})
        assert "is in EUR, but the account bills in USD" in e.value.message
        db.session.rollback()


# --- a reseller's currency ------------------------------------------------------------------------

def _edit_reseller(client, tenant, currency):
    return client.post(f"/admin/resellers/{tenant.id}/edit", data={
        "name": tenant.name, "email": tenant.email or "r@x.example", "currency": currency, "base_extension": 1000})


def test_a_resellers_currency_cannot_change_while_it_has_accounts_or_rate_sheets(world, make_tenant, new_client,
                                                                                 login):
    admin = login(new_client(), world.admin)
    resp = _edit_reseller(admin, world.b, "EUR")                                    # B has an account
    assert resp.status_code == 422
    assert "The currency cannot change: this reseller has 1 account in it." in resp.get_data(as_text=True)
    fresh = make_tenant("Fresh Reseller")
    make_sheet(fresh, name="Only a sheet")
    resp = _edit_reseller(admin, fresh, "EUR")
    assert resp.status_code == 422 and "has 1 rate sheet in it" in resp.get_data(as_text=True)
    empty = make_tenant("Empty Reseller")
    assert _edit_reseller(admin, empty, "EUR").status_code == 302
    assert _edit_reseller(admin, empty, "XXX").status_code == 422
    with unscoped():
        currencies = dict(db.session.execute(select(Tenant.id, Tenant.currency)
                                             .where(Tenant.id.in_((world.b.id, fresh.id, empty.id)))).all())
    assert currencies == {world.b.id: "USD", fresh.id: "USD", empty.id: "EUR"}


# --- DID sell prices in the reseller's currency ------------------------------------------------------

def test_a_priced_number_goes_only_to_an_account_in_the_resellers_currency(world, owner):
    eur_acct = onboard_account(world.a, users=1, cost_per_user="0", initial_credit="0", billing_type="postpaid",
                               credit_limit=Decimal("100"))
    with unscoped():
        db.session.execute(select(Account).where(Account.id == eur_acct)).scalar_one().currency = "EUR"
        db.session.commit()
    priced, free = make_numbers(world.a, 1), make_numbers(world.a, 1, setup="0", monthly="0")
    before = row_counts()
    resp = owner.post(URL.format(eur_acct) + "/numbers", data={"number_id": priced[0], "extension_id": 0})
    assert resp.status_code == 422
    assert "is priced in USD (your currency), but the account bills in EUR" in resp.get_data(as_text=True)
    assert row_counts() == before
    assert owner.post(URL.format(eur_acct) + "/numbers", data={"number_id": free[0], "extension_id": 0}).status_code == 303
    # ...and a price cannot be put on it afterwards.
    owner.post(f"/reseller/numbers/{free[0]}/price", data={"sell_setup": "0", "sell_monthly": "2"})
    assert "billed in EUR; prices are in USD: only 0 can be set." in owner.get("/reseller/numbers").get_data(as_text=True)


def test_the_wizard_refuses_priced_numbers_for_an_account_in_another_currency(world, owner):
    [number_id] = make_numbers(world.a, 1)
    before = row_counts()
    resp = owner.post(PLAN, data={**wizard(currency="EUR"), "number_ids": [str(number_id)]})
    assert resp.status_code == 422 and "is priced in USD (your currency)" in resp.get_data(as_text=True)
    assert row_counts() == before


def test_number_prices_are_shown_in_the_resellers_currency(world, owner, make_tenant, make_login, new_client, login):
    euro = make_tenant("Euro Reseller", currency="EUR")
    make_numbers(euro, 1, setup="2.00", monthly="4.00")
    client = login(new_client(), make_login(euro))
    assert "€4.00" in client.get("/reseller/numbers").get_data(as_text=True)
    step2 = client.post("/reseller/accounts/new", data=step1(currency="EUR", email="e@euro.example")).get_data(as_text=True)
    assert "setup €2.00 · €4.00/month" in step2


# --- never two currencies in one figure ------------------------------------------------------------

def test_the_dashboard_shows_balances_held_per_currency(world, owner, make_account):
    make_account(world.a, credit="30", currency="EUR")
    make_account(world.a, credit="12.50", currency="EUR")
    html = owner.get("/reseller/").get_data(as_text=True)
    # A: 10 + 5 USD, sub-reseller 7 USD; 42.50 EUR. Never 64.50 of anything.
    assert "Balances held in USD</small><div class=\"figure\">$22.00" in html
    assert "Balances held in EUR</small><div class=\"figure\">€42.50" in html
    assert "64.50" not in html


def test_the_margin_report_totals_and_charts_each_currency_apart(world, owner, make_account):
    usd = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)], name="USD retail")
    eur = make_sheet(world.a, [("44", "GB", "0.50", "0", 60, 60)], name="EUR retail", currency="EUR")
    euro_account = make_account(world.a, credit="100", currency="EUR")
    give_plan(world.account_a, usd)
    give_plan(euro_account, eur)
    ids = [add_call(world.account_a, "442071234567", 60, datetime(2025, 5, 3, 12)),
           add_call(euro_account, "442071234567", 120, datetime(2025, 5, 3, 13))]
    with tenant_scope(world.a.id, descendants=False):
        rate_calls(ids)
        db.session.commit()
    html = owner.get("/reseller/reports/margin?from=2025-05-01&to=2025-05-31").get_data(as_text=True)
    assert html.count('<svg class="chart"') == 2
    assert 'aria-label="Daily charges and cost in USD: Sell (charges) $0.60; Buy (cost) $0.00"' in html
    assert 'aria-label="Daily charges and cost in EUR: Sell (charges) €1.00; Buy (cost) €0.00"' in html
    assert 'data-currency="USD"' in html and 'data-currency="EUR"' in html
    assert "1.60" not in html


def test_a_sheet_sub_resellers_buy_at_keeps_its_currency(world, owner):
    sheet = make_sheet(world.a, name="Wholesale")
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == world.a_sub.id)).scalar_one().buy_rate_sheet_id = sheet
        db.session.commit()
    resp = owner.post(f"/reseller/rates/{sheet}/edit", data={"name": "Wholesale", "currency": "EUR",
                                                             "short_call_seconds": "0", "short_call_charge": "0"})
    assert resp.status_code == 422 and "Sub-resellers buy at this sheet in its currency" in resp.get_data(as_text=True)
    resp = owner.post("/reseller/rates", data={"name": "Gold", "currency": "XAU"})
    assert resp.status_code == 422 and "Choose a currency from the list" in resp.get_data(as_text=True)
