"""Balance-change notices: web and RQ processes publish an account number; watchers listen.

A notice only says "recompute this account's deadlines now"; losing one is harmless beyond
delay, because deadlines are also recomputed whenever a call of the account starts or ends.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from redis.exceptions import RedisError

BALANCE_CHANNEL = "ringledger:balance"
log = logging.getLogger("ringledger.ami.balance")


def notify_balance_changed(redis, account_number: str, channel: str = BALANCE_CHANNEL) -> None:
    """Call after committing a ledger entry (plain redis.Redis client)."""
    redis.publish(channel, account_number)


async def listen_balance_changes(redis, on_change: Callable[[str], None],
                                 channel: str = BALANCE_CHANNEL,
                                 on_subscribed: Callable[[], None] | None = None,
                                 retry_delay: float = 1.0) -> None:
    """Call `on_change(account_number)` for every notice, forever; resubscribes after errors.

    `on_subscribed` runs after every (re)subscription: notices sent while unsubscribed are
    lost, so the watcher recomputes all its accounts then."""
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if on_subscribed is not None:
                on_subscribed()
            async for message in pubsub.listen():
                data = message.get("data")
                if message.get("type") == "message" and data:
                    on_change(data.decode() if isinstance(data, bytes) else str(data))
        except (RedisError, OSError) as exc:
            log.warning("balance notices lost (%s); resubscribing in %.1fs", exc, retry_delay)
        finally:
            try:
                await pubsub.aclose()
            except (RedisError, OSError, RuntimeError):
                pass
        await asyncio.sleep(retry_delay)
