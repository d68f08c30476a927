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
# Sent on the same channel instead of an account number: "count the live calls again from
# the switch" (the in-use reset of the portals, app/calls/live.py RECOUNT).
RECOUNT = "recount"
log = logging.getLogger("ringledger.ami.balance")


def notify_balance_changed(redis, account_number: str, channel: str = BALANCE_CHANNEL) -> None:
    """Call after committing a ledger entry (plain redis.Redis client)."""
    redis.publish(channel, account_number)


async def listen_balance_changes(redis, on_change: Callable[[str], None],
                                 channel: str = BALANCE_CHANNEL,
                                 on_subscribed: Callable[[], None] | None = None,
                                 retry_delay: float = 1.0,
                                 stopped: Callable[[], bool] = lambda: False) -> None:
    """Call `on_change(account_number)` for every notice, forever; resubscribes after errors.

    `on_subscribed` runs after every (re)subscription: notices sent while unsubscribed are
    lost, so the watcher recomputes all its accounts then. The loop ends once `stopped()` is
    true: redis-py may swallow a cancellation that lands inside its connect (or report it as
    a connection error), so messages are polled with a 1 s timeout and `stopped()` (and the
    task's own pending cancellation) is checked between polls."""
    task = asyncio.current_task()

    def ending() -> bool:
        return stopped() or (task is not None and task.cancelling() > 0)

    while not ending():
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            if ending():
                return
            if on_subscribed is not None:
                on_subscribed()
            while not ending():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                data = message.get("data")
                if message.get("type") == "message" and data:
                    on_change(data.decode() if isinstance(data, bytes) else str(data))
        except (RedisError, OSError) as exc:
            if ending():   # a cancellation redis-py turned into a connection error
                return
            log.warning("balance notices lost (%s); resubscribing in %.1fs", exc, retry_delay)
        finally:
            try:
                await pubsub.aclose()
            except (RedisError, OSError, RuntimeError):
                pass
        if not ending():
            await asyncio.sleep(retry_delay)
