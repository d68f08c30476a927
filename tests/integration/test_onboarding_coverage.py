"""The wizard warns (never refuses) when a country opened by the plan has no prefix in the
chosen rate sheet: its calls could never be rated."""
import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.extensions import db
from tenants.scope import unscoped
from tests.integration.rating_support import make_sheet

from onboarding_support import step1, step2, wizard

NEW = "/reseller/accounts/new"
PLAN = "/reseller/accounts/new/plan"
COVERAGE = "/reseller/accounts/new/coverage"


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


@pytest.fixture
def sheet(world):
    return make_sheet(world.a, [("44", "GB", "0.01"), ("447", "GB", "0.05")], name="Europe")


def test_creating_an_account_whose_plan_opens_a_country_without_rates_warns_and_still_creates_it(world, owner, sheet):
    resp = owner.post(PLAN, data=wizard(rate_sheet_id=str(sheet), **{
        "countries-1-country": "FR", "countries-1-minutes": "0", "countries-2-country": "DE",
        "countries-2-minutes": "0"}), follow_redirects=True)
    assert resp.status_code == 200
    with unscoped():
        assert db.session.execute(select(Account).where(Account.email == "owner@harbour.example")).scalar_one()
    page = resp.get_data(as_text=True)
    assert "created" in page
    assert ('class="flash warning"' in page and "Rate sheet “Europe” has no prefix for Germany (DE), France (FR)."
            in page)
    assert "United Kingdom" not in page.split("has no prefix for")[1].split(".")[0]


def test_no_warning_when_every_opened_country_has_a_prefix_or_no_sheet_is_chosen(world, owner, sheet):
    resp = owner.post(PLAN, data=wizard(rate_sheet_id=str(sheet)), follow_redirects=True)
    assert b"created" in resp.data and b"has no prefix for" not in resp.data
    resp = owner.post(PLAN, data=wizard(email="two@harbour.example", name="Second", plan_name="Second plan", **{
        "countries-1-country": "FR", "countries-1-minutes": "0"}), follow_redirects=True)
    assert b"created" in resp.data and b"has no prefix for" not in resp.data      # no sheet: nothing to check


def test_step_two_shows_the_warning_when_it_is_shown_again(world, owner, sheet):
    # A validation error elsewhere re-renders step 2: the warning is there (without JavaScript too).
    resp = owner.post(PLAN, data=wizard(rate_sheet_id=str(sheet), users="0", **{
        "countries-1-country": "FR", "countries-1-minutes": "0"}))
    assert resp.status_code == 422
    assert "Rate sheet “Europe” has no prefix for France (FR)".encode() in resp.data
    assert b'id="coverage-warning"' in resp.data


def test_the_htmx_check_follows_the_sheet_and_the_countries(world, owner, sheet):
    resp = owner.get(COVERAGE, query_string={"rate_sheet_id": sheet, "countries-0-country": "GB",
                                             "countries-1-country": "FR"}, headers={"HX-Request": "true"})
    assert resp.status_code == 200 and b"France (FR)" in resp.data and b"<html" not in resp.data
    resp = owner.get(COVERAGE, query_string={"rate_sheet_id": sheet, "countries-0-country": "GB"})
    assert resp.status_code == 200 and b"has no prefix" not in resp.data and b'id="coverage-warning"' in resp.data
    # Another reseller's sheet, or nonsense, warns about nothing (and tells nothing about it).
    other = make_sheet(world.b, [("49", "DE", "0.01")], name="Theirs")
    for args in ({"rate_sheet_id": other, "countries-0-country": "FR"}, {"rate_sheet_id": "x"},
                 {"rate_sheet_id": sheet, "countries-0-country": "ZZ"}):
        resp = owner.get(COVERAGE, query_string=args)
        assert resp.status_code == 200 and b"has no prefix" not in resp.data and b"Theirs" not in resp.data


def test_step_two_refreshes_the_warning_with_htmx_without_sending_the_password(world, owner, sheet):
    resp = owner.post(NEW, data={**step1(), **step2(rate_sheet_id=str(sheet))})
    assert resp.status_code == 200
    assert b'hx-get="/reseller/accounts/new/coverage"' in resp.data
    assert b"hx-include=\"#rate_sheet_id, select[name$='-country']\"" in resp.data
