"""Caller-ID rules over AGI: only the account's DIDs or numbers its reseller approved."""
from sqlalchemy import select

from app.extensions import db
from app.numbers.models import Number
from app.routing.rules import add_rule
from provisioning.models import Extension
from tests.agi.client import call
from tests.ami.db_harness import calling_account
from tenants.scope import unscoped

UK = "442071234567"


def cid(agi, endpoint, presented):
    return call(agi.port, "outbound", (endpoint, UK), callerid=presented).variables["CALLERID(num)"]


def test_an_account_presents_only_its_own_or_approved_numbers(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    first, second = exts[0], exts[1]
    # no DID yet: a spoofed number is replaced by the extension's own number
    assert cid(agi, first[1], "15551234567") == first[0]
    with unscoped():
        ext2 = db.session.execute(select(Extension.id).where(Extension.sip_username == second[1])).scalar_one()
        db.session.add(Number(tenant_id=account.tenant_id, number="+442070000001", country="GB",
                              status="assigned", account_id=account.id))
        db.session.add(Number(tenant_id=account.tenant_id, number="+442070000002", country="GB",
                              status="assigned", account_id=account.id, extension_id=ext2))
        add_rule(account, "callerid", "18005550100")
        db.session.commit()
    assert cid(agi, first[1], "+442070000002") == "442070000002"     # its own DID
    assert cid(agi, first[1], "18005550100") == "18005550100"        # approved by the reseller
    assert cid(agi, first[1], "15551234567") == "442070000001"       # replaced: the account's first DID
    assert cid(agi, second[1], "15551234567") == "442070000002"      # replaced: the extension's DID
