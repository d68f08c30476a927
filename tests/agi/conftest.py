"""A real FastAGI server (workers.agi) on a free port, in its own event-loop thread, on the
test database and Redis (in-use counts under a per-test prefix)."""
from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from workers.agi.run import build


class RunningAgi:
    def __init__(self, app, **options):
        self.prefix = f"agi-test:{uuid.uuid4().hex[:10]}:inuse"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server, self.control, self.redis, self.app = self.run(
            build(app, counts_prefix=self.prefix, host="127.0.0.1", port=0, **options))
        self.port = self.server.sockets[0].getsockname()[1]
        self.counts = self.control.counts

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set_in_use(self, account: str, n: int, server: str = "pbx1") -> None:
        self.run(self.counts.update(server, {account: n}, {}))

    def stop(self):
        async def down():
            self.server.close()
            await self.server.wait_closed()
            keys = [k async for k in self.redis.scan_iter(f"{self.prefix}*")]
            keys += [k async for k in self.redis.scan_iter(f"{self.prefix.rsplit(':', 1)[0]}*")]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()
        self.run(down())
        self.control.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def agi(app):
    running = RunningAgi(app, header_timeout=2.0, command_timeout=2.0)
    try:
        yield running
    finally:
        running.stop()
