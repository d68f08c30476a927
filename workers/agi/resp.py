"""A lean Redis client for the decision's one script call (workers/agi/cache.py `LiveCounts`).

redis-py's asyncio client spends about four times the CPU of the round trip itself on a call
(connection pool checkout, retry wrapper, command packing and parsing layers), a large share of
a decision. This speaks RESP2 over one asyncio connection instead: requests are pipelined on it
(Redis answers in order, so concurrent decisions share the connection with one future each),
EVALSHA is sent with the script's SHA1 and the script is loaded once on NOSCRIPT (after a Redis
restart or SCRIPT FLUSH).

- connection: opened on first use (AUTH and SELECT pipelined with the first request); a lost
  connection fails the requests waiting on it with ConnectionError and the next call reconnects;
  a request whose connection was lost is retried once on a new one (what redis-py's default retry
  does: a CPS attempt may then count twice, never zero times).
- timeout: one timer per connection follows the oldest request's deadline; past it the connection
  is aborted (its requests fail) rather than leaving decisions waiting on a hung server.
Only plain TCP and Unix-socket connections: `script_runner` returns None for others (TLS), and
the caller keeps redis-py's script object.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque

log = logging.getLogger("ringledger.agi.resp")


class RespError(Exception):
    """An error reply (`-ERR …`, `-NOSCRIPT …`)."""


def pack(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def parse(buf: bytes, pos: int = 0):
    """(reply, next position) of one RESP2 reply at `pos`, or None if it is not complete yet.
    Errors come back as RespError instances (not raised)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line, nxt = buf[pos:pos + 1], buf[pos + 1:end], end + 2
    if kind == b":":
        return int(line), nxt
    if kind == b"+":
        return line.decode(), nxt
    if kind == b"-":
        return RespError(line.decode()), nxt
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, nxt
        if len(buf) < nxt + n + 2:
            return None
        return buf[nxt:nxt + n], nxt + n + 2
    if kind == b"*":
        n = int(line)
        if n < 0:
            return None, nxt
        items = []
        for _ in range(n):
            got = parse(buf, nxt)
            if got is None:
                return None
            item, nxt = got
            items.append(item)
        return items, nxt
    raise ConnectionError(f"not a RESP reply: {buf[pos:pos + 20]!r}")


class _Connection(asyncio.Protocol):
    def __init__(self, loop, timeout: float):
        self.loop = loop
        self.timeout = timeout
        self.transport = None
        self.pending: deque[tuple[asyncio.Future, float]] = deque()
        self.buffer = b""
        self.lost = False
        self._timer = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.buffer += data
        pos = 0
        while self.pending:
            try:
                got = parse(self.buffer, pos)
            except (ValueError, ConnectionError) as exc:
                self._fail(ConnectionError(f"bad reply from Redis: {exc}"))
                self.transport.abort()
                return
            if got is None:
                break
            reply, pos = got
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_result(reply)
        self.buffer = self.buffer[pos:]

    def connection_lost(self, exc):
        self.lost = True
        self._fail(ConnectionError(f"Redis connection lost: {exc!r}"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail(self, exc: Exception):
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(exc)

    def request(self, payload: bytes, replies: int = 1) -> list[asyncio.Future]:
        deadline = self.loop.time() + self.timeout
        futures = []
        for _ in range(replies):
            future = self.loop.create_future()
            self.pending.append((future, deadline))
            futures.append(future)
        self.transport.write(payload)
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._check)
        return futures

    def _check(self):
        self._timer = None
        if not self.pending or self.lost:
            return
        deadline = self.pending[0][1]
        if self.loop.time() >= deadline:
            log.warning("Redis did not answer within %.1f s: connection aborted", self.timeout)
            self._fail(ConnectionError("Redis did not answer in time"))
            self.transport.abort()
            return
        self._timer = self.loop.call_at(deadline, self._check)


class ScriptRunner:
    """`await runner(*args)`: EVALSHA of one script with no keys and these ARGV."""

    def __init__(self, script: str, *, host: str = "localhost", port: int = 6379, path: str | None = None,
                 db: int = 0, username: str | None = None, password: str | None = None, timeout: float = 5.0):
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        self.host, self.port, self.path = host, port, path
        self.db, self.username, self.password = int(db or 0), username, password
        self.timeout = timeout
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future | None = None
        self.connections = 0              # opened so far, for tests and logs

    async def __call__(self, *args):
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                reply = await conn.request(pack("EVALSHA", self.sha, 0, *args))[0]
                if isinstance(reply, RespError) and str(reply).startswith("NOSCRIPT"):
                    loaded, reply = conn.request(pack("SCRIPT", "LOAD", self.script) +
                                                 pack("EVALSHA", self.sha, 0, *args), 2)
                    loaded = await loaded
                    if isinstance(loaded, RespError):
                        raise loaded
                    reply = await reply
            except ConnectionError:
                if attempt == 2:
                    raise
                continue
            if isinstance(reply, RespError):
                raise reply
            return reply

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.lost and not conn.transport.is_closing():
            return conn
        if self._connecting is not None:          # another decision is opening it: share it
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            conn = await self._open(loop)
        except BaseException as exc:
            self._connecting.set_exception(ConnectionError(f"Redis unreachable: {exc!r}"))
            self._connecting.exception()          # retrieved: no "never retrieved" warning
            self._connecting = None
            raise
        self._conn = conn
        self._connecting.set_result(conn)
        self._connecting = None
        return conn

    async def _open(self, loop) -> _Connection:
        def factory():
            return _Connection(loop, self.timeout)
        if self.path:
            _, conn = await asyncio.wait_for(loop.create_unix_connection(factory, self.path), self.timeout)
        else:
            _, conn = await asyncio.wait_for(loop.create_connection(factory, self.host, self.port), self.timeout)
        self.connections += 1
        setup = b""
        count = 0
        if self.password is not None:
            setup += pack("AUTH", self.username, self.password) if self.username else pack("AUTH", self.password)
            count += 1
        if self.db:
            setup += pack("SELECT", self.db)
            count += 1
        if count:
            for reply in [await f for f in conn.request(setup, count)]:
                if isinstance(reply, RespError):
                    conn.transport.close()
                    raise ConnectionError(f"Redis refused the connection setup: {reply}")
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None:
            try:
                conn.loop.call_soon_threadsafe(conn.transport.abort)
            except RuntimeError:                  # the loop is closed already
                pass


def script_runner(client, script: str) -> ScriptRunner | None:
    """A ScriptRunner on the same server, database and credentials as a redis.asyncio client,
    or None when its connections are not plain TCP or Unix sockets (TLS, test doubles)."""
    from redis.asyncio.connection import Connection, UnixDomainSocketConnection

    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    kw = pool.connection_kwargs
    timeout = kw.get("socket_timeout") or 5.0
    common = dict(db=kw.get("db", 0), username=kw.get("username"), password=kw.get("password"), timeout=timeout)
    if pool.connection_class is Connection:
        return ScriptRunner(script, host=kw.get("host", "localhost"), port=int(kw.get("port", 6379)), **common)
    if pool.connection_class is UnixDomainSocketConnection:
        return ScriptRunner(script, path=kw["path"], **common)
    return None
