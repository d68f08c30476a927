"""The reseller's taxes page (/reseller/taxes) and an account's taxes on its edit form: clear
messages next to the field, nothing half written, only the owner changes the list."""
from decimal import Decimal

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.invoicing.models import AccountTax, Tax
from tenants.scope import unscoped

HX = {"HX-Request": "true"}


def _taxes(tenant_id):
    db.session.remove()
    with unscoped():
        return [(t.name, t.rate, t.position, t.compound, t.active) for t in db.session.execute(
            select(Tax).where(Tax.tenant_id == tenant_id).order_by(Tax.position, Tax.id)).scalars()]


@pytest.fixture
def owner(world, client, login):
    return login(client, world.owner_a)


def test_the_owner_adds_taxes_with_htmx(world, owner):
    r = owner.post("/reseller/taxes", data={"name": "VAT 20%", "rate": "20", "position": "1"}, headers=HX)
    assert r.status_code == 200 and "Tax “VAT 20%” added (20%)." in r.text and 'id="taxes"' in r.text
    r = owner.post("/reseller/taxes", data={"name": "Levy", "rate": "1.25", "position": "2", "compound": "1"},
                   headers=HX)
    assert r.status_code == 200
    assert _taxes(world.a.id) == [("VAT 20%", Decimal("20"), 1, False, True), ("Levy", Decimal("1.25"), 2, True, True)]
    page = owner.get("/reseller/taxes")
    assert page.status_code == 200 and "Levy" in page.text and "Taxes</a>" in page.text


@pytest.mark.parametrize("data, field, message", [
    ({"name": "T", "rate": "100.5", "position": "1"}, "rate", "The rate is from 0 to 100 (percent)."),
    ({"name": "T", "rate": "-1", "position": "1"}, "rate", "The rate is from 0 to 100 (percent)."),
    ({"name": "T", "rate": "7.12345", "position": "1"}, "rate", "Use at most 4 decimal places."),
    ({"name": "T", "rate": "twenty", "position": "1"}, "rate", "is not a number"),
    ({"name": "T", "rate": "", "position": "1"}, "rate", "Enter the rate in percent"),
    ({"name": "", "rate": "5", "position": "1"}, "name", "Give the tax a name"),
    ({"name": "vat", "rate": "5", "position": "1"}, "name", "already exists; names are unique."),
    ({"name": "T", "rate": "5", "position": "0"}, "position", "The order is from 1 to 999."),
    ({"name": "T", "rate": "5", "position": "x"}, "position", "Enter the order as a whole number"),
])
def test_a_refused_tax_says_why_next_to_the_field_and_writes_nothing(world, owner, data, field, message):
    owner.post("/reseller/taxes", data={"name": "VAT", "rate": "20", "position": "1"})
    r = owner.post("/reseller/taxes", data=data, headers=HX)
    assert r.status_code == 422
    assert f'id="new-{field}-error">' in r.text and message in r.text.split(f'id="new-{field}-error">')[1][:200]
    assert _taxes(world.a.id) == [("VAT", Decimal("20"), 1, False, True)]


def test_edit_deactivate_and_delete(world, owner):
    owner.post("/reseller/taxes", data={"name": "VAT", "rate": "20", "position": "1"})
    owner.post("/reseller/taxes", data={"name": "GST", "rate": "5", "position": "2"})
    vat, gst = [t.id for t in _rows(world.a.id)]
    r = owner.post(f"/reseller/taxes/{vat}", data={"name": "GST", "rate": "21", "position": "1", "active": "1"},
                   headers=HX)
    assert r.status_code == 422 and f'id="tax-{vat}-name-error"' in r.text
    r = owner.post(f"/reseller/taxes/{vat}", data={"name": "VAT", "rate": "21", "position": "3"}, headers=HX)
    assert r.status_code == 200 and "Tax “VAT” saved." in r.text
    assert _taxes(world.a.id) == [("GST", Decimal("5"), 2, False, True), ("VAT", Decimal("21"), 3, False, False)]
    r = owner.post(f"/reseller/taxes/{gst}/delete", headers=HX)
    assert r.status_code == 200 and "Tax “GST” deleted." in r.text
    assert [n for n, *_ in _taxes(world.a.id)] == ["VAT"]


def _rows(tenant_id):
    db.session.remove()
    with unscoped():
        return list(db.session.execute(select(Tax).where(Tax.tenant_id == tenant_id).order_by(Tax.id)).scalars())


def test_a_tax_on_an_issued_invoice_cannot_be_deleted(world, owner):
    from datetime import date

    from app.invoicing.models import Invoice, InvoiceTax

    tenant_id, account_id = world.a.id, world.account_a.id
    owner.post("/reseller/taxes", data={"name": "VAT", "rate": "20", "position": "1"})
    (vat,) = [t.id for t in _rows(tenant_id)]
    with unscoped():
        inv = Invoice(tenant_id=tenant_id, account_id=account_id, kind="invoice", period_key="2026-11",
                      period_start=date(2026, 11, 1), period_end=date(2026, 12, 1), status="open", currency="USD")
        db.session.add(inv)
        db.session.flush()
        db.session.add(InvoiceTax(tenant_id=tenant_id, invoice_id=inv.id, position=1, tax_id=vat, name="VAT",
                                  rate=Decimal("20"), base=Decimal("10"), amount=Decimal("2")))
        db.session.commit()
    r = owner.post(f"/reseller/taxes/{vat}/delete", headers=HX)
    assert r.status_code == 409 and "deactivate it instead" in r.text
    assert [n for n, *_ in _taxes(tenant_id)] == ["VAT"]


def test_only_the_owner_changes_taxes(world, client, login):
    staff = login(client, world.staff_a)
    assert staff.get("/reseller/taxes").status_code == 200
    assert staff.post("/reseller/taxes", data={"name": "X", "rate": "1", "position": "1"}).status_code == 403
    assert _taxes(world.a.id) == []


def _edit_data(client, account_id, **changes):
    """The account page's edit form as the browser would post it back, with changes."""
    from tests.integration.test_account_page import _edit_data as edit_data

    return edit_data(client.get(f"/reseller/accounts/{account_id}").text, **changes)


def test_the_account_picks_its_taxes_and_exemption_on_its_edit_form(world, owner):
    owner.post("/reseller/taxes", data={"name": "VAT", "rate": "20", "position": "1"})
    owner.post("/reseller/taxes", data={"name": "Levy", "rate": "1", "position": "2", "compound": "1"})
    from tests.integration.onboarding_support import onboard_account

    account_id = onboard_account(world.a, name="Quay Dental", email="admin@quay.example", plan_name="Quay plan",
                                 users=1, cost_per_user="1.00", initial_credit="10.00")
    b_id = world.b.id
    vat, levy = [t.id for t in _rows(world.a.id)]
    page = owner.get(f"/reseller/accounts/{account_id}")
    assert "VAT · 20%" in page.text and "Levy · 1% compound" in page.text
    r = owner.post(f"/reseller/accounts/{account_id}/edit",
                   data=_edit_data(owner, account_id, tax_ids=[str(vat), str(levy)]))
    assert r.status_code == 303, re.findall(r"field-error[^>]*>[^<]*<", r.text)
    with unscoped():
        assert sorted(db.session.execute(select(AccountTax.tax_id).where(AccountTax.account_id == account_id))
                      .scalars()) == [vat, levy]
    # exempt without a reason: refused next to the field, nothing saved
    r = owner.post(f"/reseller/accounts/{account_id}/edit",
                   data=_edit_data(owner, account_id, tax_ids=[str(vat)], tax_exempt="y", tax_exempt_reason=""))
    assert r.status_code == 422 and 'id="tax_exempt_reason-error"' in r.text
    assert "Say why the account is tax exempt" in r.text
    r = owner.post(f"/reseller/accounts/{account_id}/edit",
                   data=_edit_data(owner, account_id, tax_ids=[str(vat)], tax_exempt="y",
                                   tax_exempt_reason="Reverse charge"))
    assert r.status_code == 303
    db.session.remove()
    with unscoped():
        from app.accounts.models import Account

        a = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        assert (a.tax_exempt, a.tax_exempt_reason) == (True, "Reverse charge")
        assert list(db.session.execute(select(AccountTax.tax_id).where(AccountTax.account_id == account_id))
                    .scalars()) == [vat]
    # another reseller's tax id is refused
    with unscoped():
        other = Tax(tenant_id=b_id, name="B tax", rate=Decimal("5"), position=1)
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    r = owner.post(f"/reseller/accounts/{account_id}/edit",
                   data=_edit_data(owner, account_id, tax_ids=[str(vat), str(other_id)]))
    assert r.status_code == 422 and "Choose taxes from the list." in r.text
