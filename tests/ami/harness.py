"""Shared pieces of the AMI tests: time scales, account terms, the World a scenario sees."""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from decimal import Decimal

import redis.asyncio as aioredis

from tests.ami.fake_server import FakeAsterisk
from workers.ami.counts import InUseCounts
from workers.ami.policy import AccountTerms, InMemoryPolicy
from workers.ami.watcher import Watcher, WatchSettings

REDIS_URL = "redis://127.0.0.1:6379/9"
SERVER = "pbx1"  # the first switch; a second one, if asked for, is "pbx2"
# Short time scales: the watchdog notices a hung link in ~0.3 s, reconnects in ~0.05 s.
FAST = WatchSettings(ping_interval=0.1, ping_timeout=0.2, reconnect_min=0.05, reconnect_max=0.2,
                     reconcile_timeout=2.0, hangup_retry=1.0, admit_timeout=2.0, alive_ttl=5, cdr_wait=0)


def account(number: str = "100001", **terms) -> AccountTerms:
    terms.setdefault("balance", Decimal("100"))
    return AccountTerms(number, **terms)


async def eventually(predicate, timeout: float = 2.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.005)


@dataclass
class World:
    """Everything a scenario touches."""
    amis: list[FakeAsterisk]      # one fake Asterisk per server, pbx1 first
    watcher: Watcher
    policy: InMemoryPolicy
    counts: InUseCounts
    redis: aioredis.Redis
    prefix: str

    _numbers = itertools.count(1)

    @property
    def ami(self) -> FakeAsterisk:
        return self.amis[0]

    @property
    def link(self):
        return self.watcher.links[SERVER]

    def call(self, extension: str, account: str, number: str = "442071234567",
             answer: bool = False, on: int = 0) -> str:
        """The A leg of a call placed by an extension (on server `on`); returns its name."""
        name = f"PJSIP/{extension}-{next(self._numbers):08x}"
        self.amis[on].new_channel(name, account=account, exten=number)
        if answer:
            self.amis[on].answer(name)
        return name

    async def hangups_of(self, channel: str, timeout: float = 3.0, on: int = 0):
        return await self.amis[on].wait_for_action("Hangup", timeout, Channel=channel)

    async def settled(self) -> None:
        """Let events, admissions and count writes run (the link is local and fast)."""
        for _ in range(3):
            await asyncio.sleep(0.05)
            await asyncio.gather(*(p.synced() for p in self.watcher.publishers.values()))

    async def publish_balance_change(self, account: str) -> None:
        await self.redis.publish(self.watcher.settings.balance_channel, account)


