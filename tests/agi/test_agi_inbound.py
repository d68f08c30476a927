"""Calls to DIDs over the AGI protocol: to the assigned extension, to all of an account's, or refused."""
from sqlalchemy import select

from app.extensions import db
from app.numbers.models import Number
from provisioning.models import Extension
from tests.agi.client import call
from tests.ami.db_harness import calling_account
from tenants.scope import unscoped


def did(account, number, extension_sip=None, status="assigned"):
    with unscoped():
        ext_id = None
        if extension_sip:
            ext_id = db.session.execute(select(Extension.id).where(Extension.sip_username == extension_sip)).scalar_one()
        db.session.add(Number(tenant_id=account.tenant_id, number=number, country="GB", status=status,
                              account_id=account.id if status == "assigned" else None, extension_id=ext_id))
        db.session.commit()


def test_a_did_rings_its_extension_or_all_the_accounts(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="0.00", users=3)
    did(account, "+442070000001", exts[1][1])
    did(account, "+442070000002")
    s = call(agi.port, "inbound", ("442070000001",))
    assert s.variables["RL_DECISION"] == "ALLOW" and s.variables["RL_ACCOUNT"] == account.account_number
    assert s.variables["RL_DIAL_1"] == f"PJSIP/{exts[1][1]}" and not s.hung_up
    s = call(agi.port, "inbound", ("+442070000002",))
    assert s.variables["RL_DIAL_1"] == "&".join(f"PJSIP/{sip}" for _, sip in sorted(exts))


def test_an_unassigned_did_is_refused_cleanly(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account)
    did(account, "+442070000003", status="spare")
    for number in ("442070000003", "449999999999"):
        s = call(agi.port, "inbound", (number,))
        assert (s.variables["RL_DECISION"], s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == \
            ("REFUSE", "unassigned_number", "1")
        assert s.hung_up
