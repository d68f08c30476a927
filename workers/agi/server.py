"""A FastAGI server on panoramisk's routing that survives clients which vanish or stall, and
costs little per command.

panoramisk's `Application.handler` reads the headers with `reader.read(100)` until a blank
line: a client that closes first makes `read` return b'' forever without yielding, and the
whole event loop spins (every other call stalls). Its `Request` then awaits each answer through
a StreamReader. Here each connection is an `asyncio.Protocol` (`AgiSession`): the headers end at
the first blank line (at most `max_header_bytes`, within `header_timeout`), EOF ends the session,
and every command's answer is awaited under `command_timeout`. The timeouts cost one timer per
session, not one per command (`asyncio.wait_for` made a task per command): the session keeps a
deadline and its one timer re-arms itself to it. A routed session is the `request` a route
receives, with panoramisk's `Request` interface (`headers`, `send_command` returning the parsed
`200 result=…` dict).

Asterisk reads the next AGI command only after answering the previous one (it polls its socket,
then `fgets` one line through stdio: a pipelined command would sit unseen in stdio's buffer), so
commands are never pipelined: one round trip each.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict, deque

from panoramisk.fast_agi import Application
from panoramisk.utils import parse_agi_result

log = logging.getLogger("ringledger.agi")


class AgiHangup(Exception):
    """The channel went away (EOF, timeout or HANGUP notice) in the middle of a session."""


def parse_result(text: str) -> dict:
    """panoramisk's `parse_agi_result`, with the common `200 result=<value>` answer (no data,
    not -1) parsed without regular expressions; the same dict either way
    (tests/agi/test_agi_server.py compares them)."""
    if text.startswith("200 result="):
        value = text[11:]
        if value.isdigit() or (value and value != "-1" and not any(ch.isspace() for ch in value)):
            return {"status_code": 200, "result": (value, ""), "msg": ""}
    return parse_agi_result(text)


class AgiSession(asyncio.Protocol):
    """One FastAGI connection: headers, then the route's commands, one answer each."""

    def __init__(self, app: "SafeApplication"):
        self.app = app
        self.loop = app.loop
        self.headers: OrderedDict | None = None
        self.encoding = app.default_encoding
        self.transport = None
        self.peer = None
        self._buffer = b""
        self._lines: deque[bytes] = deque()
        self._waiter: asyncio.Future | None = None
        self._closed = False             # EOF or connection lost
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._counted = False

    # ---- timeouts: one timer per session, following the current deadline -----------------
    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline is None or self._closed:
            return
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)
            return
        self._deadline = None
        if self.headers is None:
            log.info("FastAGI client %r dropped before its headers ended (TimeoutError)", self.peer)
            self._finish()
        else:
            self._fail(AgiHangup("no answer: TimeoutError"))
            self.transport.abort()

    # ---- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.app._live.add(self)
        self._arm(self.app.header_timeout)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self.headers is None:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > self.app.max_header_bytes:
                    log.info("FastAGI client %r dropped before its headers ended (LimitOverrunError)", self.peer)
                    self._finish()
                return
            raw, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            self._deadline = None
            self._start(raw)
            if not self._buffer:
                return
        if b"\n" not in self._buffer:
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(lines[0])
            lines = lines[1:]
        self._lines.extend(lines)

    def eof_received(self):
        self._lost("connection closed mid-command")
        return False                     # close the transport

    def connection_lost(self, exc) -> None:
        self._lost("connection closed mid-command")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.app._live.discard(self)
        if self.headers is None:
            if not self._counted:
                log.info("FastAGI client %r dropped before its headers ended (%s)", self.peer,
                         type(exc).__name__ if exc else "IncompleteReadError")
            self._count()

    def _lost(self, why: str) -> None:
        self._closed = True
        self._fail(AgiHangup(why))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_exception(exc)

    # ---- the routed session -------------------------------------------------------------------
    def _start(self, raw: bytes) -> None:
        lines = raw.decode(self.encoding, "replace").split("\n")
        self.headers = OrderedDict(line.split(": ", 1) for line in lines if ": " in line)
        script = (self.headers.get("agi_network_script") or "").split("?", 1)[0]
        route = self.app._route.get(script)
        if route is None:
            log.error("FastAGI: no route for %r from %r", script, self.peer)
            self._finish()
            return
        self.loop.create_task(self._run(script, route))

    async def _run(self, script: str, route) -> None:
        try:
            await route(self)
        except AgiHangup as exc:
            log.info("FastAGI %s from %r ended early: %s", script, self.peer, exc)
        except Exception:
            log.exception("FastAGI %s from %r failed", script, self.peer)
        finally:
            self._finish()

    def _finish(self) -> None:
        self._count()
        if not self.transport.is_closing():
            self.transport.close()

    def _count(self) -> None:
        if not self._counted:
            self._counted = True
            self.app.sessions += 1

    async def _read_line(self) -> str:
        if self._lines:
            line = self._lines.popleft()
        else:
            if self._closed:
                raise AgiHangup("connection closed mid-command")
            self._waiter = self.loop.create_future()
            self._arm(self.app.command_timeout)
            try:
                line = await self._waiter
            finally:
                self._waiter = None
                self._deadline = None
        text = line.decode(self.encoding, "replace").rstrip("\r")
        if text == "HANGUP":            # Asterisk's notice that the channel hung up
            raise AgiHangup("channel hung up")
        return text

    async def send_command(self, command: str) -> dict:
        """panoramisk's Request.send_command: the answer parsed, `100 Trying` skipped, an
        `520` usage error's next line appended to its message."""
        if self._closed or self.transport.is_closing():
            raise AgiHangup("connection closed mid-command")
        self.transport.write((command + "\n").encode(self.encoding))
        result = parse_result(await self._read_line())
        while result.get("status_code") == 100:
            result = parse_result(await self._read_line())
        if result.get("error") == "AGIUsageError":
            result["msg"] += await self._read_line() + "\n"
        return result


class SafeApplication(Application):
    header_timeout = 5.0
    command_timeout = 10.0
    max_header_bytes = 16 * 1024

    def __init__(self, *, header_timeout: float | None = None, command_timeout: float | None = None):
        super().__init__(loop=asyncio.get_running_loop())
        if header_timeout is not None:
            self.header_timeout = header_timeout
        if command_timeout is not None:
            self.command_timeout = command_timeout
        self.sessions = 0           # finished sessions, for logs and tests
        self._live: set[AgiSession] = set()

    async def handler(self, reader, writer):      # panoramisk's stream entry point: not this server's
        raise NotImplementedError("SafeApplication serves through AgiSession (start())")


async def start(app: SafeApplication, host: str, port: int, *,
                sock: socket.socket | None = None) -> asyncio.base_events.Server:
    """Serve `app` on host:port, or on an already listening `sock` (a worker process of
    workers/agi/run.py `supervise`, sharing its parent's socket)."""
    loop = asyncio.get_running_loop()
    if sock is not None:
        return await loop.create_server(lambda: AgiSession(app), sock=sock)
    return await loop.create_server(lambda: AgiSession(app), host, port)
