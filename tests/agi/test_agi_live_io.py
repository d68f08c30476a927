"""The decision's own I/O on the event loop: the statement's asyncpg connections
(workers/agi/live_db.py) and the lean Redis script client (workers/agi/resp.py), against the
real PostgreSQL and Redis."""
import asyncio
import threading
import time
import uuid

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import text

from app.extensions import db
from tests.agi.client import call
from tests.ami.db_harness import calling_account
from workers.agi.resp import RespError, ScriptRunner, pack, parse, script_runner

UK = "442071234567"


def dial(agi, endpoint, number=UK):
    return call(agi.port, "outbound", (endpoint, number), extension=number)


# ---- the statement's connections ------------------------------------------------------------------
def test_decisions_survive_their_database_connections_being_cut(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"
    pids = [c.get_server_pid() for c in list(agi.control.live._all)]
    assert pids
    db.session.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid"), {"p": pids})
    db.session.commit()
    time.sleep(0.2)
    s = dial(agi, exts[0][1])
    assert s.variables["RL_DECISION"] == "ALLOW" and s.variables["RL_MAX_SECONDS"] == "5"
    assert agi.control.live.reconnects >= 1
    assert not set(pids) & {c.get_server_pid() for c in list(agi.control.live._all)}


def test_more_calls_at_once_than_connections(agi, make_tenant, make_account):
    account, exts = calling_account(make_tenant, make_account, credit="50.00", users=2)
    results = []

    def one():
        results.append(dial(agi, exts[0][1]).variables["RL_DECISION"])
    threads = [threading.Thread(target=one) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == ["ALLOW"] * 24
    assert 1 <= len(agi.control.live._all) <= agi.control.live.size


def test_a_cache_miss_is_decided_in_a_thread_and_counted(agi, make_tenant, make_account):
    from app.routing.rules import add_rule
    from tenants.scope import unscoped
    from tests.ami.db_harness import fresh_account

    account, exts = calling_account(make_tenant, make_account, credit="5.00")
    assert dial(agi, exts[0][1]).variables["RL_DECISION"] == "ALLOW"
    misses = dict(agi.control.fast.misses)
    with unscoped():
        add_rule(fresh_account(account.id), "deny", "44")
        db.session.commit()
    assert dial(agi, exts[0][1]).variables["RL_CAUSE"] == "destination_denied"
    assert agi.control.fast.misses.get("profile", 0) == misses.get("profile", 0) + 1
    assert dial(agi, exts[0][1]).variables["RL_CAUSE"] == "destination_denied"    # cached again
    assert agi.control.fast.misses.get("profile", 0) == misses.get("profile", 0) + 1


# ---- RESP -----------------------------------------------------------------------------------------
def test_resp_parse_whole_and_partial_replies():
    assert parse(b":12\r\n") == (12, 5)
    assert parse(b"*2\r\n:1\r\n$3\r\nabc\r\n") == ([1, b"abc"], 17)
    assert parse(b"*2\r\n:1\r\n$3\r\nab") is None
    assert parse(b"$-1\r\n") == (None, 5)
    assert parse(b"+OK\r\n:7") == ("OK", 5)
    error, _ = parse(b"-NOSCRIPT No matching script\r\n")
    assert isinstance(error, RespError) and str(error).startswith("NOSCRIPT")
    assert pack("EVALSHA", "ab", 0, "x") == b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n0\r\n$1\r\nx\r\n"


def _runner(app, script, **kw):
    return script_runner(aioredis.from_url(app.config["REDIS_URL"]), script) if not kw else ScriptRunner(script, **kw)


def test_a_script_unknown_to_redis_is_loaded_then_run(app):
    runner = _runner(app, f"-- {uuid.uuid4()}\nreturn {{ARGV[1], tonumber(ARGV[2]) + 1}}")

    async def go():
        try:
            return await runner("a", 41), await runner("b", 1)
        finally:
            runner.close()
    assert asyncio.run(go()) == ([b"a", 42], [b"b", 2])
    assert runner.connections == 1


def test_concurrent_calls_share_one_connection_each_gets_its_answer(app):
    runner = _runner(app, "return ARGV[1]")

    async def go():
        try:
            return await asyncio.gather(*(runner(str(n)) for n in range(300)))
        finally:
            runner.close()
    assert asyncio.run(go()) == [str(n).encode() for n in range(300)]
    assert runner.connections == 1


def test_the_script_runs_in_the_clients_database_and_errors_are_raised(app):
    key = f"agi-test:{uuid.uuid4().hex}"
    runner = _runner(app, "redis.call('SET', ARGV[1], ARGV[2]) return 1")
    failing = _runner(app, "return redis.error_reply('ERR nope')")

    async def go():
        try:
            assert await runner(key, "v") == 1
            with pytest.raises(RespError, match="nope"):
                await failing()
        finally:
            runner.close()
            failing.close()
    asyncio.run(go())
    plain = redis.Redis.from_url(app.config["REDIS_URL"])
    try:
        assert plain.get(key) == b"v"
    finally:
        plain.delete(key)
        plain.close()


def test_a_killed_connection_is_reopened(app):
    runner = _runner(app, "return 5")
    plain = redis.Redis.from_url(app.config["REDIS_URL"])

    async def go():
        try:
            assert await runner() == 5
            port = runner._conn.transport.get_extra_info("sockname")[1]
            plain.execute_command("CLIENT", "KILL", "ADDR", f"127.0.0.1:{port}")
            await asyncio.sleep(0.1)
            assert await runner() == 5
        finally:
            runner.close()
    try:
        asyncio.run(go())
    finally:
        plain.close()
    assert runner.connections == 2


def test_a_server_that_never_answers_fails_the_call_in_time():
    async def go():
        async def silent(reader, writer):
            await reader.read(10000)
            await asyncio.sleep(5)
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        runner = ScriptRunner("return 1", host="127.0.0.1", port=server.sockets[0].getsockname()[1], timeout=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionError):
                await runner()
        finally:
            runner.close()
            server.close()
        return time.monotonic() - started
    assert asyncio.run(go()) < 2.0          # two tries of 0.3 s, not forever


def test_which_clients_get_the_lean_runner():
    unix = script_runner(aioredis.from_url("unix:///tmp/redis.sock?db=3"), "return 1")
    assert unix is not None and unix.path == "/tmp/redis.sock" and unix.db == 3
    tcp = script_runner(aioredis.from_url("redis://u:pw@10.1.2.3:6380/4"), "return 1")
    assert (tcp.host, tcp.port, tcp.db, tcp.username, tcp.password) == ("10.1.2.3", 6380, 4, "u", "pw")
    assert script_runner(aioredis.from_url("rediss://10.1.2.3:6380/0"), "return 1") is None   # TLS: redis-py
    assert script_runner(object(), "return 1") is None
