"""Fixtures for the AMI watcher tests: a fake Asterisk over TCP, a real panoramisk Manager,
Redis DB 9 (keys under a per-test prefix, deleted afterwards; the DB is never flushed).

Tests are plain sync functions; the `ami_world` fixture runs an async scenario with
`asyncio.run`, so no pytest-asyncio is needed.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
import redis
import redis.asyncio as aioredis

from tests.ami.fake_server import FakeAsterisk
from tests.ami.harness import FAST, REDIS_URL, World, eventually
from workers.ami.counts import InUseCounts
from workers.ami.policy import InMemoryPolicy
from workers.ami.watcher import AsteriskServer, Watcher, WatchSettings


@pytest.fixture
def ami_world():
    """Run `scenario(world)` against fresh fake Asterisks and a watcher:
    ami_world(scenario, accounts=[account(...)], settings=FAST, servers=1, secret=...)."""
    def go(scenario, accounts=(), settings: WatchSettings = FAST, secret: str = "s3cret",
           servers: int = 1, timeout: float = 20.0, wait_ready: bool = True):
        async def main():
            prefix = f"ami-test:{uuid.uuid4().hex[:10]}"
            client = aioredis.from_url(REDIS_URL)
            amis = [await FakeAsterisk().start() for _ in range(servers)]
            try:
                tuned = replace(settings, counts_prefix=f"{prefix}:inuse",
                                balance_channel=f"{prefix}:balance")
                counts = InUseCounts(client, tuned.counts_prefix)
                policy = InMemoryPolicy(accounts, counts.account)
                switches = [AsteriskServer(f"pbx{n + 1}", "127.0.0.1", ami.port, "ringledger",
                                           secret) for n, ami in enumerate(amis)]
                watcher = Watcher(switches, policy, client, tuned)
                world = World(amis, watcher, policy, counts, client, prefix)
                await watcher.start()
                try:
                    if wait_ready:
                        await eventually(lambda: all(link.reconciliations >= 1
                                                     for link in watcher.links.values()),
                                         what="first reconciliation")
                        await asyncio.wait_for(watcher.subscribed.wait(), 2)
                    await scenario(world)
                finally:
                    await watcher.stop()
            finally:
                for ami in amis:
                    await ami.stop()
                keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
                if keys:
                    await client.delete(*keys)
                await client.aclose()
        asyncio.run(asyncio.wait_for(main(), timeout))
    return go


@pytest.fixture
def redis_prefix():
    """A key prefix in Redis DB 9, cleaned up after the test."""
    prefix = f"ami-test:{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
