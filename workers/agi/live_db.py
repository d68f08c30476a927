"""The per-decision statement on the event loop: asyncpg connections of the FastAGI process's own.

The fast path's one statement (workers/agi/cache.py `live_statements`, built with SQLAlchemy
Core and compiled once for asyncpg's `$n` parameters) runs here without a thread hop, an app
context, a session, a pool checkout with its ping, or ORM rows: a decision's database cost is
the statement's round trip and little else. asyncpg prepares it once per connection.

A few connections (`size`) are opened on first use and kept; a decision waits for a free one.
A connection that broke (a restarted PostgreSQL, a terminated backend) is dropped and the
statement, a plain read, is tried once more on a new connection, as `pool_pre_ping` did for the
session. Autocommit: each statement is its own snapshot.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque

log = logging.getLogger("ringledger.agi.live_db")


def asyncpg_dsn(url) -> str:
    """A SQLAlchemy PostgreSQL URL (any driver) as a libpq DSN asyncpg understands; query
    parameters (e.g. `options=-csearch_path=…`) pass through as server settings."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Statement:
    """A Core select compiled for asyncpg: its SQL and the order of its parameters."""

    def __init__(self, select):
        from sqlalchemy.dialects import postgresql

        compiled = select.compile(dialect=postgresql.dialect(paramstyle="numeric_dollar"))
        self.sql = str(compiled)
        self.names = list(compiled.positiontup)
        self.defaults = dict(compiled.params)      # literals SQLAlchemy bound itself

    def args(self, params: dict) -> list:
        return [params[n] if n in params else self.defaults[n] for n in self.names]


def _broken(exc: BaseException) -> bool:
    """A connection-level failure (not an error of the statement itself)."""
    import asyncpg

    return isinstance(exc, (OSError, asyncpg.exceptions.InterfaceError,
                            asyncpg.exceptions.PostgresConnectionError,
                            asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CannotConnectNowError))


class LiveReader:
    def __init__(self, dsn: str, *, size: int = 4, connect_timeout: float = 5.0, timeout: float = 5.0):
        self.dsn = dsn
        self.size = size
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._idle: list = []
        self._waiters: deque[asyncio.Future] = deque()
        self._open = 0                       # connections open or being opened
        self._all: set = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()        # close() may come from another thread
        self.reconnects = 0                  # for tests and logs

    async def fetchrow(self, statement: Statement, params: dict):
        args = statement.args(params)
        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                row = await conn.fetchrow(statement.sql, *args, timeout=self.timeout)
            except BaseException as exc:
                if _broken(exc) or conn.is_closed():
                    self._discard(conn)
                    if attempt == 1 and not isinstance(exc, asyncio.CancelledError):
                        log.warning("decision statement: connection lost (%r); trying a new one", exc)
                        self.reconnects += 1
                        continue
                else:
                    self._release(conn)
                raise
            self._release(conn)
            return row

    # ---- the connections -------------------------------------------------------------------------
    async def _acquire(self):
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self.close()
            self._loop = loop
        while True:
            if self._idle:
                return self._idle.pop()
            if self._open < self.size:
                self._open += 1
                try:
                    conn = await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
                with self._lock:
                    self._all.add(conn)
                return conn
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                return await waiter
            except _Retry:
                continue                     # a slot freed: open a connection or take an idle one
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    if waiter.exception() is None:
                        self._release(waiter.result())    # handed over as we were cancelled
                    else:
                        self._wake_one()                  # pass the freed slot on
                raise

    async def _connect(self):
        import asyncpg

        async def init(conn):
            await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
        try:
            await init(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    def _release(self, conn) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _wake_one(self) -> None:
        """A connection slot freed: a waiter opens its own (it retries `_acquire`)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_Retry())
                return

    def _discard(self, conn) -> None:
        conn.terminate()
        with self._lock:
            self._all.discard(conn)
        self._open -= 1
        self._wake_one()

    def close(self) -> None:
        """Terminate every connection (from any thread; on the loop's thread when it runs)."""
        with self._lock:
            conns, self._all = list(self._all), set()
        self._idle.clear()
        self._open = 0
        loop = self._loop
        if not conns:
            return

        def kill():
            for conn in conns:
                conn.terminate()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed() or not loop.is_running():
            kill()
        else:
            loop.call_soon_threadsafe(kill)


class _Retry(Exception):
    pass
