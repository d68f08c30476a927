"""`flask agi serve`: the FastAGI process (Procfile line `agi`).

One process (the default, `AGI_PROCESSES=1`) serves every call on one event loop (uvloop when
installed and `AGI_UVLOOP` is on, the default). A decision costs a fraction of a millisecond of
CPU, most of it the AGI protocol (one round trip per command, docs/routing.md), so one process
uses at most one core: `AGI_PROCESSES=N` forks N worker processes that accept on one listening
socket the parent opened, each with its own loop, database connections and caches; the parent
only supervises (a worker that dies is replaced; SIGTERM/SIGINT stop them all). A shared socket
rather than SO_REUSEPORT: an idle worker takes the next call whichever it is (SO_REUSEPORT
spreads by address hash, whoever is busy), and connections waiting to be accepted are not lost
when a worker dies.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

import redis.asyncio as aioredis

from workers.ami.counts import InUseCounts
from workers.ami.run import watch_settings

from .decide import CallControl, InboundControl
from .routes import calling_card, inbound, outbound
from .server import SafeApplication, start

log = logging.getLogger("ringledger.agi")


async def build(app, *, counts_prefix: str = "inuse", host: str = "127.0.0.1", port: int = 4573,
                header_timeout: float | None = None, command_timeout: float | None = None,
                sock: socket.socket | None = None):
    """Start the server (on `sock` when given: a worker of `serve`); returns (asyncio server,
    CallControl, redis client, SafeApplication)."""
    client = aioredis.from_url(app.config["REDIS_URL"])
    control = CallControl(app, InUseCounts(client, counts_prefix),
                          threads=app.config.get("AGI_THREADS", 8))
    agi = SafeApplication(header_timeout=header_timeout, command_timeout=command_timeout)
    agi.add_route("outbound", outbound(control))
    agi.add_route("inbound", inbound(InboundControl(control.policy)))
    agi.add_route("callingcard", calling_card(control))
    server = await start(agi, host, port, sock=sock)
    if control.fast is not None:     # an account's notice drops its cached profile at once
        control.fast.listen(app.config["REDIS_URL"])
    control.warm_up()
    return server, control, client, agi


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket the workers share (bound here, so a port in use fails at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _event_loop_runner(app):
    if app.config.get("AGI_UVLOOP", True):
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: the FastAGI server runs on asyncio's own loop")
        else:
            return uvloop.run
    return asyncio.run


def serve_one(app, host: str, port: int, *, sock: socket.socket | None = None) -> None:
    """One FastAGI process on host:port (or the shared `sock`), until stopped."""
    async def main():
        server, control, client, _ = await build(app, host=host, port=port, sock=sock,
                                                 counts_prefix=watch_settings(app).counts_prefix)
        log.info("FastAGI %s listening on %s:%d", f"worker {os.getpid()}" if sock is not None else "server",
                 host, port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            control.close()
            await client.aclose()

    _event_loop_runner(app)(main())


def serve(app) -> None:
    host, port = app.config.get("AGI_HOST", "0.0.0.0"), int(app.config.get("AGI_PORT", 4573))
    processes = int(app.config.get("AGI_PROCESSES", 1) or 1)
    logging.basicConfig(level=logging.INFO)
    if processes <= 1:
        serve_one(app, host, port)
    else:
        supervise(app, host, port, processes)


def supervise(app, host: str, port: int, processes: int, *, restart_delay: float = 1.0) -> None:
    """Fork `processes` workers on one listening socket and keep that many running."""
    sock = listening_socket(host, port)
    children: dict[int, float] = {}          # pid -> start time
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:                         # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                from app.extensions import db

                with app.app_context():
                    db.engine.dispose(close=False)     # no connection of the parent's is shared
                serve_one(app, host, port, sock=sock)
            except BaseException:
                log.exception("FastAGI worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(processes):
        spawn()
    log.info("FastAGI on %s:%d: %d worker processes %s", host, port, processes, sorted(children))
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        log.warning("FastAGI worker %d ended (status %d); starting another", pid, status)
        # a worker that dies at once (bad configuration, database down) is not restarted in a tight loop
        time.sleep(restart_delay if time.monotonic() - started > 10 else max(restart_delay, 5.0))
        if not stopping:
            spawn()
    sock.close()
