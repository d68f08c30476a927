"""In-use counts in Redis, shared by every watcher and readable by web and worker processes.

Schema (prefix defaults to `inuse`):
    {prefix}:servers                   set of server names that ever wrote counts
    {prefix}:{server}:account          hash  account number -> live calls on that server
    {prefix}:{server}:extension        hash  extension      -> live channels on that server
    {prefix}:{server}:alive            key with a TTL, refreshed by the server's watcher
    {prefix}:cps:{account}:{second}    call attempts in that second (shared CPS counter)
    {prefix}:cps:{account}             sorted set of recent attempt times (sliding CPS window)

Each server's share is written as absolute values (never increments), so a write is
idempotent and a reconciliation simply replaces the server's hashes. Readers sum over the
servers whose watcher is alive, so the share of a dead watcher stops counting after the TTL.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Mapping, Protocol

from redis.exceptions import RedisError

log = logging.getLogger("ringledger.ami.counts")
_attempt_ids = itertools.count()
ACCOUNT, EXTENSION = "account", "extension"


class InUseCounts:
    """Async (redis.asyncio) writer and reader of the in-use counts."""

    def __init__(self, redis, prefix: str = "inuse", alive_ttl: int = 30):
        self.redis = redis
        self.prefix = prefix
        self.alive_ttl = alive_ttl

    def key(self, server: str, kind: str) -> str:
        return f"{self.prefix}:{server}:{kind}"

    # ---- writing (one watcher per server) ------------------------------------------------
    async def update(self, server: str, accounts: Mapping[str, int],
                     extensions: Mapping[str, int]) -> None:
        """Set some fields to their current absolute value (0 removes the field)."""
        pipe = self.redis.pipeline(transaction=True)
        for kind, values in ((ACCOUNT, accounts), (EXTENSION, extensions)):
            live = {name: n for name, n in values.items() if n > 0}
            gone = [name for name, n in values.items() if n <= 0]
            if live:
                pipe.hset(self.key(server, kind), mapping=live)
            if gone:
                pipe.hdel(self.key(server, kind), *gone)
        self._alive(pipe, server)
        await pipe.execute()

    async def replace(self, server: str, accounts: Mapping[str, int],
                      extensions: Mapping[str, int]) -> None:
        """Replace one server's whole share (after a reconciliation), atomically."""
        pipe = self.redis.pipeline(transaction=True)
        for kind, values in ((ACCOUNT, accounts), (EXTENSION, extensions)):
            pipe.delete(self.key(server, kind))
            live = {name: n for name, n in values.items() if n > 0}
            if live:
                pipe.hset(self.key(server, kind), mapping=live)
        self._alive(pipe, server)
        await pipe.execute()

    async def touch(self, server: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        self._alive(pipe, server)
        await pipe.execute()

    async def forget(self, server: str) -> None:
        await self.redis.delete(self.key(server, ACCOUNT), self.key(server, EXTENSION),
                                self.key(server, "alive"))
        await self.redis.srem(f"{self.prefix}:servers", server)

    def _alive(self, pipe, server: str) -> None:
        pipe.sadd(f"{self.prefix}:servers", server)
        pipe.set(self.key(server, "alive"), 1, ex=self.alive_ttl)

    # ---- reading (sums over live servers) ------------------------------------------------
    async def account(self, account: str) -> int:
        return await self._total(ACCOUNT, account)

    async def extension(self, extension: str) -> int:
        return await self._total(EXTENSION, extension)

    async def accounts(self) -> dict[str, int]:
        return await self._all(ACCOUNT)

    async def extensions(self) -> dict[str, int]:
        return await self._all(EXTENSION)

    async def of_server(self, server: str, kind: str = ACCOUNT) -> dict[str, int]:
        raw = await self.redis.hgetall(self.key(server, kind))
        return {_text(k): int(v) for k, v in raw.items()}

    async def attempts(self, account: str, now: float) -> int:
        """Count one call attempt; returns the account's attempts in this second (all
        watchers together). For a database-backed policy's CPS check."""
        key = f"{self.prefix}:cps:{account}:{int(now)}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 2)
        count, _ = await pipe.execute()
        return int(count)

    async def attempts_in_window(self, account: str, now: float, window: float = 1.0) -> int:
        """Count one call attempt; returns the account's attempts in the last `window` seconds
        (a sliding window, all watchers together: a sorted set of attempt times)."""
        key = f"{self.prefix}:cps:{account}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.zadd(key, {f"{now:.6f}/{os.getpid()}/{next(_attempt_ids)}": now})
        pipe.zcard(key)
        pipe.expire(key, int(window) + 2)
        _, _, count, _ = await pipe.execute()
        return int(count)

    async def _live_servers(self) -> list[str]:
        servers = sorted(_text(s) for s in await self.redis.smembers(f"{self.prefix}:servers"))
        if not servers:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for server in servers:
            pipe.exists(self.key(server, "alive"))
        alive = await pipe.execute()
        return [s for s, up in zip(servers, alive) if up]

    async def _total(self, kind: str, name: str) -> int:
        servers = await self._live_servers()
        if not servers:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for server in servers:
            pipe.hget(self.key(server, kind), name)
        return sum(int(v) for v in await pipe.execute() if v is not None)

    async def _all(self, kind: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for server in await self._live_servers():
            for name, n in (await self.of_server(server, kind)).items():
                totals[name] = totals.get(name, 0) + n
        return totals


def account_in_use(redis, account: str, prefix: str = "inuse") -> int:
    """Synchronous reader for web and RQ processes (plain redis.Redis client)."""
    servers = sorted(_text(s) for s in redis.smembers(f"{prefix}:servers"))
    pipe = redis.pipeline(transaction=False)
    for server in servers:
        pipe.exists(f"{prefix}:{server}:alive")
        pipe.hget(f"{prefix}:{server}:{ACCOUNT}", account)
    replies = pipe.execute()
    return sum(int(n) for up, n in zip(replies[::2], replies[1::2]) if up and n is not None)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class CountSource(Protocol):
    def take_dirty(self) -> tuple[set[str], set[str]]: ...
    def account_count(self, account: str) -> int: ...
    def extension_count(self, extension: str) -> int: ...
    def account_counts(self) -> dict[str, int]: ...
    def extension_counts(self) -> dict[str, int]: ...


class CountsPublisher:
    """Copies one server's tracker counts to Redis, coalesced and strictly in order.

    A single flusher task writes whatever changed since its last write, reading the values at
    write time, so a burst of calls costs one round trip and a slow write can never land
    after a newer one. `await synced()` returns once everything changed before the call is
    written (admission uses it so the policy reads a count that includes the new call).
    """

    def __init__(self, counts: InUseCounts, server: str, source: CountSource,
                 retry_delay: float = 1.0):
        self.counts = counts
        self.server = server
        self.source = source
        self.retry_delay = retry_delay
        self._wanted = 0      # changes announced
        self._written = 0     # changes known to be in Redis
        self._rebuild = False
        self._task: asyncio.Task | None = None
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._closed = False

    def changed(self) -> None:
        self._wanted += 1
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    def rebuild(self) -> None:
        """Replace the server's whole share on the next write (after a reconciliation)."""
        self._rebuild = True
        self.changed()

    async def synced(self, timeout: float = 1.0) -> bool:
        target = self._wanted
        if self._written >= target:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        """Stop writing; a write under way is cancelled (the next watcher rebuilds anyway)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _flush(self) -> None:
        while self._written < self._wanted and not self._closed:
            target, rebuild = self._wanted, self._rebuild
            self._rebuild = False
            accounts, extensions = self.source.take_dirty()
            try:
                if rebuild:
                    await self.counts.replace(self.server, self.source.account_counts(),
                                              self.source.extension_counts())
                else:
                    await self.counts.update(
                        self.server,
                        {a: self.source.account_count(a) for a in accounts},
                        {e: self.source.extension_count(e) for e in extensions})
            except (RedisError, OSError) as exc:
                if self._closed:
                    return
                log.warning("in-use counts of %s not written (%s); retrying", self.server, exc)
                self._rebuild = True  # the dirty keys are lost: rewrite everything
                await asyncio.sleep(self.retry_delay)
                continue
            self._written = target
            still_waiting = []
            for want, fut in self._waiters:
                if want <= target:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still_waiting.append((want, fut))
            self._waiters = still_waiting
