"""Outbound call decisions over the FastAGI protocol (real TCP server, real PostgreSQL/Redis)."""
import socket
import threading
import time
from datetime import date, timedelta

from app.extensions import db
from app.routing.rules import add_rule
from tests.agi.client import call
from tests.ami.db_harness import calling_account, set_account
from tenants.scope import unscoped

UK = "442071234567"


def dial(agi, endpoint, number, **kw):
    return call(agi.port, "outbound", (endpoint, number), extension=number, **kw)


def test_an_allowed_call_gets_its_account_and_an_absolute_limit(agi, make_tenant, make_account):
    # 1.00/s (60.00/min, 1/1 blocks), 5.00 credit: 5 s.
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    s = dial(agi, exts[0][1], "+" + UK)
    assert s.variables["RL_DECISION"] == "ALLOW"
    assert s.variables["RL_ACCOUNT"] == account.account_number
    assert s.variables["RL_DESTINATION"] == UK
    assert s.variables["RL_MAX_SECONDS"] == "5"
    assert s.variables["TIMEOUT(absolute)"] == "5"
    assert not s.hung_up
    assert len(s.commands) == 1 and s.commands[0].startswith("EXEC MSet ")   # one round trip


def test_the_credit_is_shared_with_the_accounts_live_calls(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="6.00")
    agi.set_in_use(account.account_number, 3)      # this call and two live ones, per the watcher
    s = dial(agi, exts[0][1], UK)
    assert s.variables["RL_MAX_SECONDS"] == "2"


def test_unknown_endpoint_is_refused_and_hung_up(agi, app):
    s = dial(agi, "nobody", UK)
    assert (s.variables["RL_DECISION"], s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == \
        ("REFUSE", "unknown_account", "21")
    assert s.hung_up and s.commands[-1] == "HANGUP"


def test_status_and_expiry_refuse(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    set_account(account.id, status="suspended")
    assert dial(agi, exts[0][1], UK).variables["RL_CAUSE"] == "account_suspended"
    set_account(account.id, status="active", expiry_mode="date", expiry_date=date.today() - timedelta(days=2))
    assert dial(agi, exts[0][1], UK).variables["RL_CAUSE"] == "account_expired"


def test_no_rate_and_closed_country(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00",
                                    rates=(("44", "GB", "60.00"), ("33", "FR", "60.00")))
    assert dial(agi, exts[0][1], "8612345678").variables["RL_CAUSE"] == "no_rate"
    assert dial(agi, exts[0][1], "33123456789").variables["RL_CAUSE"] == "country_not_opened"


def test_no_credit_plays_the_sound_when_the_account_asks_for_it(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="0.50")
    s = dial(agi, exts[0][1], UK)
    assert s.variables["RL_CAUSE"] == "no_credit"
    assert s.streamed == ["prepaid-no-enough-credit"]
    assert s.commands.index("ANSWER") < s.commands.index('STREAM FILE prepaid-no-enough-credit ""') \
        < s.commands.index("HANGUP")
    set_account(account.id, play_insufficient_credit=False)
    s = dial(agi, exts[0][1], UK)
    assert s.variables["RL_CAUSE"] == "no_credit" and s.streamed == [] and s.hung_up


def test_max_channels_uses_the_watchers_shared_count(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    set_account(account.id, max_channels=2)
    agi.set_in_use(account.account_number, 2)      # this call is the second: fine
    assert dial(agi, exts[0][1], UK).variables["RL_DECISION"] == "ALLOW"
    agi.set_in_use(account.account_number, 3)
    s = dial(agi, exts[0][1], UK)
    assert (s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == ("channel_limit", "34")


def test_calls_per_second(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    set_account(account.id, cps_limit=2)
    assert dial(agi, exts[0][1], UK).variables["RL_DECISION"] == "ALLOW"
    # two attempts counted this instant (by other calls / the watcher, in the shared window)
    for _ in range(2):
        agi.run(agi.counts.attempts_in_window(account.account_number, time.time()))
    s = dial(agi, exts[0][1], UK)
    assert (s.variables["RL_CAUSE"], s.variables["RL_Q850"]) == ("cps_limit", "34")


def test_deny_and_allow_prefixes(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00")
    with unscoped():
        add_rule(account, "deny", "44207")
        db.session.commit()
    assert dial(agi, exts[0][1], UK).variables["RL_CAUSE"] == "destination_denied"
    assert dial(agi, exts[0][1], "441611234567").variables["RL_DECISION"] == "ALLOW"
    with unscoped():
        add_rule(account, "allow", "4420")
        db.session.commit()
    assert dial(agi, exts[0][1], "441611234567").variables["RL_CAUSE"] == "destination_denied"
    assert dial(agi, exts[0][1], "442081234567").variables["RL_DECISION"] == "ALLOW"


def test_extensions_of_one_account_call_each_other_by_short_number_free(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="0.00")
    set_account(account.id, cps_limit=1)
    for _ in range(3):     # no credit, CPS 1, deny-all rules: none of it applies to a sibling
        s = dial(agi, exts[0][1], exts[1][0])
        assert s.variables["RL_DECISION"] == "ALLOW" and s.variables["RL_MAX_SECONDS"] == "0"
        assert s.variables["RL_DIAL_1"] == f"PJSIP/{exts[1][1]}" and s.variables["RL_DIAL_COUNT"] == "1"
        assert "TIMEOUT(absolute)" not in s.variables
    s = dial(agi, exts[0][1], "1999")               # not one of the account's extensions
    assert s.variables["RL_DECISION"] == "REFUSE"


# ---- clients that vanish ------------------------------------------------------------------
def _slow_call_in_background(agi, endpoint, results):
    results.append(dial(agi, endpoint, UK))


def test_a_client_closing_before_its_headers_end_stalls_nothing(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    before = agi.control.policy  # same server throughout
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", agi.port)) as sock:
            sock.sendall(b"agi_network: yes\nagi_network_script: outbound\n")   # no blank line
    # panoramisk's own handler would now spin the loop at 100 % CPU: a real call still answers fast.
    started = time.monotonic()
    s = dial(agi, exts[0][1], UK)
    assert s.variables["RL_DECISION"] == "ALLOW" and time.monotonic() - started < 5
    assert agi.control.policy is before
    # and the event loop is idle again: a timer on it fires on time
    t0 = time.monotonic()
    agi.run(__import__("asyncio").sleep(0.2))
    assert time.monotonic() - t0 < 1.0


def test_a_client_that_never_finishes_its_headers_is_timed_out(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    silent = socket.create_connection(("127.0.0.1", agi.port))
    silent.sendall(b"agi_network: yes\n")
    s = dial(agi, exts[0][1], UK)                 # served while the silent client waits
    assert s.variables["RL_DECISION"] == "ALLOW"
    silent.settimeout(5)
    assert silent.recv(100) == b""                 # closed by the server after header_timeout
    silent.close()


def test_a_client_that_disconnects_mid_command_stalls_nothing(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    sessions = agi.control.policy and agi.run(_sessions(agi))
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", agi.port))
        sock.sendall(f"agi_network_script: outbound\nagi_arg_1: {exts[0][1]}\nagi_arg_2: {UK}\n\n".encode())
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b'EXEC MSet "RL_ACCOUNT=')
        sock.close()                               # hang up without answering the command
    # one that answers its first command then goes silent is timed out, not waited on forever
    mute = socket.create_connection(("127.0.0.1", agi.port))
    mute.sendall(f"agi_network_script: outbound\nagi_arg_1: {exts[0][1]}\nagi_arg_2: {UK}\n\n".encode())
    results = []
    worker = threading.Thread(target=_slow_call_in_background, args=(agi, exts[0][1], results))
    worker.start()
    worker.join(10)
    assert results and results[0].variables["RL_DECISION"] == "ALLOW"
    deadline = time.monotonic() + 10
    while agi.run(_sessions(agi)) < sessions + 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agi.run(_sessions(agi)) == sessions + 5  # three dropped, the silent one timed out, one served
    mute.close()


async def _sessions(agi):
    return agi.app.sessions
