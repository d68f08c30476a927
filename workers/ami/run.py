"""`flask ami watch`: follow every enabled Asterisk server with the database-backed policy.

    watch_configured_servers(app)     # blocking; until SIGTERM/SIGINT or request_stop()

Reads the enabled servers (admin: /admin/servers) and runs one Watcher for all of them,
with `DatabasePolicy` and the app's REDIS_URL. Every `AMI_RECHECK_SECONDS` (30) it reads
them again: added servers start, removed or disabled ones stop, changed ones reconnect with
their new settings, the others go on undisturbed. With no server enabled it says so and
keeps checking, so the Procfile's `ami` process stays up.

App config read here (all optional): AMI_RECHECK_SECONDS, AMI_COUNTS_PREFIX (the in-use
counts' Redis prefix, shared with app/calls/in_use.py), AMI_WATCH_SETTINGS (a WatchSettings).
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import replace

import click
import redis.asyncio as aioredis

from .db_policy import DatabasePolicy
from .link import AsteriskServer, WatchSettings
from .watcher import Watcher

log = logging.getLogger("ringledger.ami.run")
RECHECK_SECONDS = 30.0

_stop_lock = threading.Lock()
_stoppers: list = []          # (loop, event) of running supervisors, for request_stop()


def request_stop() -> None:
    """Ask every running watch_configured_servers() to stop (thread-safe)."""
    with _stop_lock:
        for loop, event in list(_stoppers):
            loop.call_soon_threadsafe(event.set)


def configured_servers(app) -> list[AsteriskServer]:
    """The enabled servers, as the watcher's plain records (sorted by name)."""
    from app.calls.servers import enabled_servers
    from app.extensions import db
    from tenants.scope import unscoped

    with app.app_context():
        try:
            with unscoped():
                return [AsteriskServer(s.name, s.host, s.port, s.username, s.secret)
                        for s in enabled_servers()]
        finally:
            db.session.remove()


def watch_settings(app) -> WatchSettings:
    settings = app.config.get("AMI_WATCH_SETTINGS") or WatchSettings()
    prefix = app.config.get("AMI_COUNTS_PREFIX")
    return replace(settings, counts_prefix=prefix) if prefix else settings


def watch_configured_servers(app, *, echo=click.echo) -> None:
    redis_url = app.config.get("REDIS_URL")
    if not redis_url:
        echo("REDIS_URL is not set: the AMI watcher keeps its in-use counts in Redis and "
             "cannot run without it.")
        return
    recheck = float(app.config.get("AMI_RECHECK_SECONDS") or RECHECK_SECONDS)
    asyncio.run(_supervise(app, redis_url, watch_settings(app), recheck, echo))


async def _supervise(app, redis_url: str, settings: WatchSettings, recheck: float, echo) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests): request_stop() instead
    with _stop_lock:
        _stoppers.append((loop, stop))
    client = aioredis.from_url(redis_url)
    policy = DatabasePolicy(app)
    watcher: Watcher | None = None
    current: list[AsteriskServer] | None = None
    try:
        while not stop.is_set():
            try:
                servers = await asyncio.to_thread(configured_servers, app)
            except Exception:
                log.exception("cannot read the Asterisk servers; keeping the current ones")
                servers = current
            if servers is not None and servers != current:
                names = ", ".join(f"{s.name} ({s.host}:{s.port})" for s in servers)
                if not servers:
                    if watcher is not None:
                        await watcher.reconfigure([])    # links closed, their counts forgotten
                        await watcher.stop()
                        watcher = None
                    echo(f"No Asterisk server is enabled: add one at /admin/servers. "
                         f"Checking again every {recheck:g} s.")
                elif watcher is None:
                    watcher = Watcher(servers, policy, client, settings)
                    await watcher.start()
                    echo(f"Watching {len(servers)} Asterisk server(s): {names}.")
                else:
                    await watcher.reconfigure(servers)
                    echo(f"Servers changed; now watching {len(servers)}: {names}.")
                current = servers
            try:
                await asyncio.wait_for(stop.wait(), recheck)
            except asyncio.TimeoutError:
                pass
    finally:
        with _stop_lock:
            _stoppers.remove((loop, stop))
        if watcher is not None:
            await watcher.stop()
        policy.close()
        await client.aclose()
        echo("AMI watcher stopped.")
