"""Customer IP trunks over the AGI protocol (issue 19, point 7): the dialplan passes the trunk's
endpoint (`trunk-<id>`, matched by the caller's address through PJSIP identify rows); the
decision finds its account and enforces the trunk's own call limit and CPS limit."""
import time

from app.extensions import db
from provisioning import trunks
from tests.agi.client import call
from tests.ami.db_harness import calling_account, fresh_account, set_account
from tenants.scope import unscoped

UK = "442071234567"


def dial(agi, endpoint, number=UK):
    return call(agi.port, "outbound", (endpoint, number), extension=number)


def add_trunk(account, name="Office PBX", hosts="203.0.113.10", call_limit=0, cps_limit=0, enabled=True):
    with unscoped():
        trunk = trunks.add_trunk(fresh_account(account.id), name=name, hosts=hosts, call_limit=call_limit,
                                 cps_limit=cps_limit, enabled=enabled)
        db.session.commit()
        return trunk.endpoint, trunk.id


def trunk_in_use(agi, endpoint, n):
    """The watcher's live-channel count of the trunk's endpoint (`PJSIP/trunk-<id>-…`)."""
    agi.run(agi.counts.update("pbx1", {}, {endpoint: n}))


def test_a_call_from_a_trunk_is_its_accounts_and_is_routed_and_limited_like_it(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="6.00")
    endpoint, _ = add_trunk(account)
    s = dial(agi, endpoint)
    assert (s.variables["RL_DECISION"], s.variables["RL_ACCOUNT"]) == ("ALLOW", account.account_number)
    assert int(s.variables["RL_MAX_SECONDS"]) > 0
    # the account's own checks still apply to trunk calls
    set_account(account.id, status="suspended")
    assert dial(agi, endpoint).variables["RL_CAUSE"] == "account_suspended"


def test_an_unknown_or_disabled_trunk_is_refused(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="6.00")
    endpoint, trunk_id = add_trunk(account, enabled=False)
    s = dial(agi, endpoint)
    assert (s.variables["RL_DECISION"], s.variables["RL_CAUSE"]) == ("REFUSE", "unknown_account") and s.hung_up
    assert dial(agi, f"trunk-{trunk_id + 1000}").variables["RL_CAUSE"] == "unknown_account"


def test_the_trunks_call_limit_uses_the_watchers_count_of_its_endpoint(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="50.00")
    endpoint, _ = add_trunk(account, call_limit=2)
    other, _ = add_trunk(account, name="Branch", hosts="198.51.100.0/29", call_limit=0)
    trunk_in_use(agi, endpoint, 2)                  # this call is the second on the trunk: fine
    assert dial(agi, endpoint).variables["RL_DECISION"] == "ALLOW"
    trunk_in_use(agi, endpoint, 3)
    s = dial(agi, endpoint)
    assert (s.variables["RL_DECISION"], s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == \
        ("REFUSE", "channel_limit", "34")
    trunk_in_use(agi, other, 40)                    # the other trunk has no limit of its own
    assert dial(agi, other).variables["RL_DECISION"] == "ALLOW"


def test_the_trunks_cps_limit_is_its_own_sliding_window(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="50.00")
    endpoint, _ = add_trunk(account, cps_limit=2)
    other, _ = add_trunk(account, name="Branch", hosts="2001:db8::/64")
    assert dial(agi, endpoint).variables["RL_DECISION"] == "ALLOW"
    agi.run(agi.counts.attempts_in_window(f"trunk:{endpoint}", time.time()))   # another attempt this second
    s = dial(agi, endpoint)
    assert (s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == ("cps_limit", "34")
    # the account (no CPS limit) and its other trunk are not held back by this trunk's window
    assert dial(agi, other).variables["RL_DECISION"] == "ALLOW"
    time.sleep(1.1)
    assert dial(agi, endpoint).variables["RL_DECISION"] == "ALLOW"


def test_the_accounts_own_limits_still_bind_calls_from_its_trunks(agi, make_tenant, make_account):
    account, _ = calling_account(make_tenant, make_account, credit="50.00")
    endpoint, _ = add_trunk(account, call_limit=10)
    set_account(account.id, max_channels=1)
    agi.set_in_use(account.account_number, 2)
    assert dial(agi, endpoint).variables["RL_CAUSE"] == "channel_limit"
