"""Asterisk servers: /admin/servers (CRUD, field messages, audit, roles) and `flask ami watch`
following the configured servers against the fake Asterisk."""
import asyncio
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from app.calls.servers import AsteriskServer
from app.audit import AuditEntry
from app.extensions import db
from tests.ami.fake_server import FakeAsterisk
from tests.ami.harness import FAST, eventually
from tenants.scope import unscoped

GOOD = {"name": "pbx1", "host": "pbx1.example.net", "port": "5038", "username": "ringledger",
        "secret": "s3cret", "enabled": "y"}


def servers() -> list[AsteriskServer]:
    db.session.rollback()
    with unscoped():
        return list(db.session.execute(select(AsteriskServer).order_by(AsteriskServer.id)
                                       .execution_options(populate_existing=True)).scalars())


def audit_actions() -> list[str]:
    with unscoped():
        return list(db.session.execute(select(AuditEntry.action).where(AuditEntry.action.like("asterisk_server.%"))
                                       .order_by(AuditEntry.id)).scalars())


def add_server(**values) -> AsteriskServer:
    with unscoped():
        server = AsteriskServer(**{"name": "pbx1", "host": "127.0.0.1", "port": 5038, "username": "ringledger",
                                   "secret": "s3cret", **values})
        db.session.add(server)
        db.session.commit()
        return server


def test_the_admin_adds_edits_disables_enables_and_deletes_a_server(world, client, login):
    login(client, world.admin)
    assert b'href="/admin/servers"' in client.get("/admin/").data          # in the admin nav
    assert b"No servers yet" in client.get("/admin/servers").data

    resp = client.post("/admin/servers/new", data=GOOD)
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/servers"
    (server,) = servers()
    assert (server.name, server.host, server.port, server.username, server.secret, server.enabled) == (
        "pbx1", "pbx1.example.net", 5038, "ringledger", "s3cret", True)
    page = client.get("/admin/servers").get_data(as_text=True)
    assert "pbx1.example.net:5038" in page and "not connected yet" in page and "s3cret" not in page

    edit = client.get(f"/admin/servers/{server.id}/edit").get_data(as_text=True)
    assert 'value="pbx1.example.net"' in edit and "s3cret" not in edit       # the secret is never shown
    resp = client.post(f"/admin/servers/{server.id}/edit",
                       data={**GOOD, "host": "10.0.0.12", "port": "5039", "secret": ""})
    assert resp.status_code == 303
    (server,) = servers()
    assert (server.host, server.port, server.secret) == ("10.0.0.12", 5039, "s3cret")   # blank keeps it

    assert client.post(f"/admin/servers/{server.id}/status", data={"action": "disable"}).status_code == 303
    assert servers()[0].enabled is False
    assert "disabled" in client.get("/admin/servers").get_data(as_text=True)
    assert client.post(f"/admin/servers/{server.id}/status", data={"action": "enable"}).status_code == 303
    assert servers()[0].enabled is True

    assert client.post(f"/admin/servers/{server.id}/delete").status_code == 303
    assert servers() == []
    assert audit_actions() == ["asterisk_server.created", "asterisk_server.updated", "asterisk_server.disabled",
                               "asterisk_server.enabled", "asterisk_server.deleted"]
    with unscoped():
        updated = db.session.execute(select(AuditEntry).where(AuditEntry.action == "asterisk_server.updated")
                                     ).scalar_one()
    assert updated.actor_id == world.admin.id and updated.tenant_id == world.platform.id
    assert updated.details["host"] == ["pbx1.example.net", "10.0.0.12"] and "secret" not in updated.details


BAD_INPUT = [
    ("name", "", "Enter a name"),
    ("name", "pbx 1/a", "Use 1–64 letters"),
    ("host", "", "Enter the server"),
    ("host", "tcp://pbx1.example.net", "without tcp://"),
    ("host", "pbx1.example.net:5038", "Enter the port in the Port field"),
    ("host", "pbx_1..example", "not a valid host name"),
    ("host", "300.1.2.3", "not a valid host name"),
    ("port", "", "whole number"),
    ("port", "50x8", "whole number"),
    ("port", "70000", "from 1 to 65535"),
    ("port", "0", "from 1 to 65535"),
    ("username", "", "Enter the AMI user"),
    ("username", "ring ledger", "Use up to 64 letters"),
    ("secret", "", "Enter the AMI secret"),
]


def test_bad_input_shows_a_message_next_to_the_field_and_writes_nothing(world, client, login):
    login(client, world.admin)
    for field, value, message in BAD_INPUT:
        resp = client.post("/admin/servers/new", data={**GOOD, field: value})
        assert resp.status_code == 422, (field, value)
        html = resp.get_data(as_text=True)
        assert f'id="{field}-error"' in html and message in html, (field, value)
    server = add_server(name="pbx9")
    for field, value, message in BAD_INPUT[:-1]:            # on edit a blank secret keeps the old one
        resp = client.post(f"/admin/servers/{server.id}/edit", data={**GOOD, field: value})
        assert resp.status_code == 422 and message in resp.get_data(as_text=True), (field, value)
    assert [(s.name, s.host, s.port) for s in servers()] == [("pbx9", "127.0.0.1", 5038)]
    assert audit_actions() == []
    ok = client.post("/admin/servers/new", data={**GOOD, "host": "[2001:db8::11]", "port": "05038"})
    assert ok.status_code == 303 and [(s.host, s.port) for s in servers()][-1] == ("2001:db8::11", 5038)


def test_a_name_already_used_is_refused_on_new_and_on_edit(world, client, login):
    login(client, world.admin)
    add_server(name="pbx1")
    other = add_server(name="pbx2")
    resp = client.post("/admin/servers/new", data=GOOD)
    assert resp.status_code == 422 and "Another server already has this name" in resp.get_data(as_text=True)
    resp = client.post(f"/admin/servers/{other.id}/edit", data={**GOOD, "secret": ""})
    assert resp.status_code == 422 and "Another server already has this name" in resp.get_data(as_text=True)
    assert [s.name for s in servers()] == ["pbx1", "pbx2"]


def test_an_unknown_server_is_404(world, client, login):
    login(client, world.admin)
    assert client.get("/admin/servers/999/edit").status_code == 404
    assert client.post("/admin/servers/999/delete").status_code == 404


def test_other_roles_get_403_and_change_nothing(world, new_client, login):
    server = add_server()
    for role in ("owner_a", "staff_a", "customer_a"):
        client = login(new_client(), getattr(world, role))
        assert client.get("/admin/servers").status_code == 403
        assert client.post("/admin/servers/new", data={**GOOD, "name": "evil"}).status_code == 403
        assert client.post(f"/admin/servers/{server.id}/edit", data={**GOOD, "host": "evil.example"}).status_code == 403
        assert client.post(f"/admin/servers/{server.id}/status", data={"action": "disable"}).status_code == 403
        assert client.post(f"/admin/servers/{server.id}/delete").status_code == 403
    assert [(s.name, s.host, s.enabled) for s in servers()] == [("pbx1", "127.0.0.1", True)]


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    resp = client.get("/admin/servers")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/admin/login")


def test_the_list_shows_the_link_status_the_watcher_reported(world, client, login):
    from datetime import datetime

    add_server(name="up1", last_connected_at=datetime(2026, 11, 1, 10, 0, 0))
    add_server(name="down1", last_connected_at=datetime(2026, 11, 1, 10, 0, 0),
               last_error="cannot connect to 10.0.0.9:5038: Connection refused",
               last_error_at=datetime(2026, 11, 1, 11, 0, 0))
    login(client, world.admin)
    html = client.get("/admin/servers").get_data(as_text=True)
    assert "connected</span> <small>since 2026-11-01 10:00:00 UTC" in html
    assert "cannot connect to 10.0.0.9:5038: Connection refused" in html
    assert "No watcher is running for it" in html                # no heartbeat in Redis


# ---- flask ami watch ----------------------------------------------------------------------------
def _watch_in_thread(app):
    """`flask ami watch` in a thread (CliRunner); returns (thread, result holder)."""
    runner = app.test_cli_runner()
    out = {}

    def go():
        out["result"] = runner.invoke(args=["ami", "watch"])
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, out


@pytest.fixture
def ami_app(app):
    """The app tuned for a watcher under test: fast re-checks and links, its own Redis prefix."""
    import uuid

    saved = {k: app.config.get(k) for k in ("AMI_RECHECK_SECONDS", "AMI_WATCH_SETTINGS", "AMI_COUNTS_PREFIX")}
    app.config.update(AMI_RECHECK_SECONDS=0.2, AMI_WATCH_SETTINGS=replace(FAST, alive_ttl=5),
                      AMI_COUNTS_PREFIX=f"ami-clitest:{uuid.uuid4().hex[:8]}:inuse")
    yield app
    app.config.update(saved)


def _server(name):
    return next((s for s in servers() if s.name == name), None)


def test_flask_ami_watch_follows_the_configured_servers_and_picks_up_changes(ami_app, platform):
    from workers.ami.run import request_stop

    async def main():
        first, second = await FakeAsterisk().start(), await FakeAsterisk().start()
        try:
            add_server(name="pbx1", port=first.port)
            add_server(name="off", port=second.port, enabled=False)
            thread, out = _watch_in_thread(ami_app)
            await eventually(lambda: first.logins == 1, timeout=5, what="login to pbx1")
            await eventually(lambda: _server("pbx1").last_connected_at is not None, timeout=5,
                             what="link status saved")
            assert _server("pbx1").link_state == "up" and second.connections == 0

            # enabled while running: followed on the next re-check, pbx1 undisturbed
            with unscoped():
                db.session.execute(select(AsteriskServer).where(AsteriskServer.name == "off")).scalar_one() \
                    .enabled = True
                db.session.commit()
            await eventually(lambda: second.logins == 1, timeout=5, what="login to the enabled server")
            # a wrong secret: the link is rebuilt, the refusal shows as the server's error
            with unscoped():
                db.session.execute(select(AsteriskServer).where(AsteriskServer.name == "off")).scalar_one() \
                    .secret = "wrong"
                db.session.commit()
            await eventually(lambda: "login refused" in _server("off").last_error, timeout=5,
                             what="login refusal saved")
            assert _server("off").link_state == "down"
            assert first.logins == 1                      # never reconnected meanwhile
            request_stop()
            await asyncio.to_thread(thread.join, 10)
            assert not thread.is_alive()
            result = out["result"]
            assert result.exit_code == 0, result.output
            assert "Watching 1 Asterisk server(s): pbx1" in result.output
            assert "now watching 2" in result.output and "AMI watcher stopped." in result.output
        finally:
            request_stop()
            await first.stop()
            await second.stop()
    asyncio.run(asyncio.wait_for(main(), 30))


def test_flask_ami_watch_with_no_server_enabled_says_so_and_keeps_checking(ami_app, platform):
    from workers.ami.run import request_stop

    async def main():
        ami = await FakeAsterisk().start()
        try:
            thread, out = _watch_in_thread(ami_app)
            await asyncio.sleep(0.5)
            assert thread.is_alive()                      # the Procfile process stays up
            add_server(name="late", port=ami.port)
            await eventually(lambda: ami.logins == 1, timeout=5, what="login once a server is added")
            request_stop()
            await asyncio.to_thread(thread.join, 10)
            output = out["result"].output
            assert "No Asterisk server is enabled: add one at /admin/servers" in output
            assert "now watching 1: late" in output or "Watching 1 Asterisk server(s): late" in output
        finally:
            request_stop()
            await ami.stop()
    asyncio.run(asyncio.wait_for(main(), 30))


def test_flask_ami_watch_without_redis_explains_why_it_cannot_run(app):
    saved = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = None
    try:
        result = app.test_cli_runner().invoke(args=["ami", "watch"])
    finally:
        app.config["REDIS_URL"] = saved
    assert "REDIS_URL is not set" in result.output


def test_a_removed_server_leaves_the_redis_counts(ami_app, platform):
    """Deleting a server while watched: its link closes and its in-use share is forgotten."""
    import redis

    from workers.ami.run import request_stop

    async def main():
        ami = await FakeAsterisk().start()
        try:
            server = add_server(name="gone", port=ami.port)
            thread, out = _watch_in_thread(ami_app)
            await eventually(lambda: ami.logins == 1, timeout=5, what="login")
            conn = redis.Redis.from_url(ami_app.config["REDIS_URL"])
            prefix = ami_app.config["AMI_COUNTS_PREFIX"]
            await eventually(lambda: conn.exists(f"{prefix}:gone:alive"), timeout=5, what="heartbeat")
            with unscoped():
                db.session.delete(db.session.execute(select(AsteriskServer).where(
                    AsteriskServer.id == server.id)).scalar_one())
                db.session.commit()
            await eventually(lambda: ami.logged_in_connections == 0, timeout=5, what="link closed")
            await eventually(lambda: not conn.exists(f"{prefix}:gone:alive"), timeout=5, what="share forgotten")
            request_stop()
            await asyncio.to_thread(thread.join, 10)
            assert "No Asterisk server is enabled" in out["result"].output
        finally:
            request_stop()
            await ami.stop()
    started = time.time()
    asyncio.run(asyncio.wait_for(main(), 30))
    assert time.time() - started < 15
