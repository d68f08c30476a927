"""A FastAGI server on panoramisk that survives clients which vanish or stall.

panoramisk's `Application.handler` reads the headers with `reader.read(100)` until a blank
line: a client that closes first makes `read` return b'' forever without yielding, and the
whole event loop spins (every other call stalls). Here headers are read with `readuntil` under
a timeout, EOF ends the session, and every command's answer is awaited under a timeout too.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from panoramisk.fast_agi import Application, Request
from panoramisk.utils import parse_agi_result

log = logging.getLogger("ringledger.agi")


class AgiHangup(Exception):
    """The channel went away (EOF, timeout or HANGUP notice) in the middle of a session."""


class SafeRequest(Request):
    command_timeout = 10.0

    async def _read_result(self):
        try:
            line = await asyncio.wait_for(self.reader.readline(), self.command_timeout)
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise AgiHangup(f"no answer: {exc!r}") from exc
        if not line.endswith(b"\n"):
            raise AgiHangup("connection closed mid-command")
        text = line.decode(self.encoding, "replace").rstrip("\r\n")
        if text == "HANGUP":        # Asterisk's notice that the channel hung up
            raise AgiHangup("channel hung up")
        return parse_agi_result(text)

    async def send_command(self, command):
        try:
            return await super().send_command(command)
        except ConnectionError as exc:
            raise AgiHangup(repr(exc)) from exc


class SafeApplication(Application):
    header_timeout = 5.0
    max_header_bytes = 16 * 1024

    def __init__(self, *, header_timeout: float | None = None, command_timeout: float | None = None):
        super().__init__(loop=asyncio.get_running_loop())
        if header_timeout is not None:
            self.header_timeout = header_timeout
        self.command_timeout = command_timeout or SafeRequest.command_timeout
        self.sessions = 0           # finished sessions, for logs and tests

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        try:
            try:
                raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), self.header_timeout)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ConnectionError) as exc:
                log.info("FastAGI client %r dropped before its headers ended (%s)", peer, type(exc).__name__)
                return
            lines = raw.decode(self.default_encoding, "replace").split("\n")
            headers = OrderedDict(line.split(": ", 1) for line in lines if ": " in line)
            script = (headers.get("agi_network_script") or "").split("?", 1)[0]
            route = self._route.get(script)
            if route is None:
                log.error("FastAGI: no route for %r from %r", script, peer)
                return
            request = SafeRequest(app=self, headers=headers, reader=reader, writer=writer,
                                  encoding=self.default_encoding)
            request.command_timeout = self.command_timeout
            try:
                await route(request)
            except AgiHangup as exc:
                log.info("FastAGI %s from %r ended early: %s", script, peer, exc)
            except Exception:
                log.exception("FastAGI %s from %r failed", script, peer)
        finally:
            self.sessions += 1
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


async def start(app: SafeApplication, host: str, port: int) -> asyncio.base_events.Server:
    return await asyncio.start_server(app.handler, host, port, limit=SafeApplication.max_header_bytes)
