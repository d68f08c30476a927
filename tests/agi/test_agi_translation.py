"""Number translation rules per account (phonenumbers for national -> E.164), over AGI."""
from types import SimpleNamespace

from app.extensions import db
from app.routing.models import TranslationRule
from app.routing.rules import add_rule
from app.routing.translation import translate
from tests.agi.client import call
from tests.ami.db_harness import calling_account, set_account
from tenants.scope import unscoped


def rule(match="", strip=0, add="", e164=False):
    return SimpleNamespace(match=match, strip_digits=strip, add_prefix=add, national_to_e164=e164)


def test_translate_national_and_access_codes():
    national = [rule("9", strip=1), rule("00", strip=2), rule("0", e164=True)]
    assert translate(national, "02071234567", "GB") == "442071234567"
    assert translate(national, "0033123456789", "GB") == "33123456789"
    assert translate(national, "9442071234567", "GB") == "442071234567"      # access code 9 stripped
    assert translate([rule("0", e164=True)], "0612345678", "FR") == "33612345678"
    assert translate(national, "442071234567", "GB") == "442071234567"       # no rule matches
    assert translate([rule("0", e164=True)], "0123", "GB") == "0123"         # not a valid number: as dialled


def test_the_call_is_decided_on_the_translated_number(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    set_account(account.id, country="GB")
    with unscoped():
        for pos, (match, strip, e164) in enumerate((("00", 2, False), ("0", 0, True))):
            db.session.add(TranslationRule(tenant_id=account.tenant_id, account_id=account.id, position=pos,
                                           match=match, strip_digits=strip, national_to_e164=e164))
        add_rule(account, "deny", "4420812")
        db.session.commit()
    s = call(agi.port, "outbound", (exts[0][1], "02071234567"))
    assert (s.variables["RL_DECISION"], s.variables["RL_DESTINATION"]) == ("ALLOW", "442071234567")
    s = call(agi.port, "outbound", (exts[0][1], "00442071234567"))
    assert s.variables["RL_DESTINATION"] == "442071234567"
    # rules see the translated number: 020 8123 … is 4420812…, denied
    assert call(agi.port, "outbound", (exts[0][1], "02081234567")).variables["RL_CAUSE"] == "destination_denied"
