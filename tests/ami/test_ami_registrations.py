"""Registration status from endpoint events (pure), and the portals' in-use reader agreeing
with the watcher's Redis writer."""
import asyncio

import pytest
import redis.asyncio as aioredis

from workers.ami.counts import InUseCounts
from workers.ami.registrations import Registration, contact_address, registration_of


@pytest.mark.parametrize("event, expected", [
    ({"event": "ContactStatus", "uri": "sip:t1_1000@203.0.113.7:5062;ob", "contactstatus": "Created",
      "aor": "t1_1000", "endpointname": "t1_1000"}, ("t1_1000", True, "203.0.113.7:5062")),
    ({"event": "ContactStatus", "uri": "sip:t1_1000@203.0.113.7:5062", "contactstatus": "Reachable",
      "aor": "t1_1000"}, ("t1_1000", True, "203.0.113.7:5062")),
    ({"event": "ContactStatus", "uri": "sip:t1_1000@[2001:db8::7]:5060;transport=tcp",
      "contactstatus": "NonQualified", "endpointname": "t1_1000"}, ("t1_1000", True, "[2001:db8::7]:5060")),
    ({"event": "ContactStatus", "uri": "sip:t1_1000@203.0.113.7:5062", "contactstatus": "Removed",
      "endpointname": "t1_1000"}, ("t1_1000", False, "203.0.113.7:5062")),
    ({"event": "ContactStatus", "uri": "sip:t1_1000@203.0.113.7", "contactstatus": "Unreachable",
      "endpointname": "t1_1000"}, ("t1_1000", False, "203.0.113.7")),
    ({"event": "ContactList", "objecttype": "contact", "endpoint": "t1_1000", "aor": "t1_1000",
      "uri": "sip:t1_1000@203.0.113.7:5062;ob", "status": "NonQualified"}, ("t1_1000", True, "203.0.113.7:5062")),
    ({"event": "ContactList", "objecttype": "contact", "endpoint": "t1_1000", "aor": "t1_1000",
      "uri": "sip:t1_1000@203.0.113.7:5062", "status": "Unreachable"}, ("t1_1000", False, "203.0.113.7:5062")),
    ({"event": "PeerStatus", "channeltype": "PJSIP", "peer": "PJSIP/t1_1001", "peerstatus": "Reachable"},
     ("t1_1001", True, None)),
    ({"event": "PeerStatus", "channeltype": "SIP", "peer": "SIP/t1_1001", "peerstatus": "Registered",
      "address": "198.51.100.4:5060"}, ("t1_1001", True, "198.51.100.4:5060")),
    ({"event": "PeerStatus", "peer": "PJSIP/t1_1001", "peerstatus": "Unregistered"}, ("t1_1001", False, None)),
    ({"event": "DeviceStateChange", "device": "PJSIP/t1_1002", "state": "INUSE"}, ("t1_1002", True, None)),
    ({"event": "DeviceStateChange", "device": "PJSIP/t1_1002", "state": "UNAVAILABLE"}, ("t1_1002", False, None)),
])
def test_endpoint_events_say_whether_an_extension_is_registered_and_where(event, expected):
    reg = registration_of(event, 1234.5)
    assert (reg.endpoint, reg.registered, reg.contact) == expected and reg.at == 1234.5


@pytest.mark.parametrize("event", [
    {"event": "ContactStatus", "contactstatus": "Unknown", "endpointname": "t1_1000"},
    {"event": "ContactStatus", "contactstatus": "Created"},                       # no endpoint
    {"event": "PeerStatus", "peer": "PJSIP/t1_1001", "peerstatus": "Lagging?"},
    {"event": "DeviceStateChange", "device": "Queue:support", "state": "INUSE"},
    {"event": "DeviceStateChange", "device": "Local/1000@ctx", "state": "INUSE"},
    {"event": "DeviceStateChange", "device": "PJSIP/t1_1002", "state": "UNKNOWN"},
    {"event": "Newchannel"},
])
def test_events_that_say_nothing_usable_are_skipped(event):
    assert registration_of(event, 0.0) is None


def test_contact_addresses_drop_scheme_user_and_parameters():
    assert contact_address("<sips:alice@pbx.example.net:5061;transport=tls>") == "pbx.example.net:5061"
    assert contact_address("") == ""
    assert Registration("e", True, None, 1.0).contact is None


def test_the_portal_reader_sums_live_servers_like_the_watcher_reader(app, redis_prefix):
    from app.calls import in_use

    async def write():
        client = aioredis.from_url(app.config["REDIS_URL"])
        try:
            counts = InUseCounts(client, f"{redis_prefix}:inuse")
            await counts.update("pbx1", {"100001": 2}, {"t1_1000": 1, "t1_1001": 1})
            await counts.update("pbx2", {"100001": 1}, {"t1_1000": 1})
            await counts.update("dead", {"100001": 5}, {"t1_1000": 5})
            await client.delete(counts.key("dead", "alive"))            # its watcher is gone
            return await counts.account("100001"), await counts.extensions()
        finally:
            await client.aclose()
    saved = app.config.get("AMI_COUNTS_PREFIX")
    app.config["AMI_COUNTS_PREFIX"] = f"{redis_prefix}:inuse"
    try:
        total, extensions = asyncio.run(write())
        assert in_use.account_in_use("100001") == total == 3
        assert in_use.extensions_in_use() == extensions == {"t1_1000": 2, "t1_1001": 1}
        assert in_use.extension_in_use("t1_1001") == 1 and in_use.extension_in_use("nobody") == 0
        assert in_use.account_in_use("nobody") == 0
        assert in_use.watcher_alive("pbx1") is True and in_use.watcher_alive("dead") is False
    finally:
        app.config["AMI_COUNTS_PREFIX"] = saved


def test_the_portal_reader_answers_none_without_redis(app):
    from app.calls import in_use

    saved, conn = app.config["REDIS_URL"], app.extensions.pop("ringledger_redis", None)
    app.config["REDIS_URL"] = None
    try:
        assert in_use.account_in_use("100001") is None and in_use.watcher_alive("pbx1") is None
    finally:
        app.config["REDIS_URL"] = saved
        if conn is not None:
            app.extensions["ringledger_redis"] = conn


def test_the_shared_cps_window_slides_and_counts_every_watcher(redis_prefix):
    from tests.ami.harness import REDIS_URL

    async def go():
        client = aioredis.from_url(REDIS_URL)
        try:
            one, two = InUseCounts(client, redis_prefix), InUseCounts(client, redis_prefix)  # two watchers
            got = [await one.attempts_in_window("100001", 10.90), await two.attempts_in_window("100001", 10.95),
                   await one.attempts_in_window("100001", 11.05),        # a new second, same window
                   await two.attempts_in_window("100001", 11.95),        # 10.90 and 10.95 slid out
                   await one.attempts_in_window("100002", 11.95)]
            return got
        finally:
            await client.aclose()
    assert asyncio.run(go()) == [1, 2, 3, 2, 1]
