"""One Asterisk server: its panoramisk Manager, reconnect backoff, ping watchdog, reconciliation.

panoramisk 1.4 reconnects only after a real TCP close, at a fixed interval, and its own ping
never waits for the Pong. So: reconnect delays double up to a ceiling (reset at login), and a
watchdog sends Ping with a reply timeout; no Pong in time -> abort the transport, which makes
panoramisk see a close and reconnect. Every login is followed by CoreShowChannels, which
realigns the tracker with what Asterisk really has (see CallTracker.reconcile).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from panoramisk import Manager

from .calls import CallTracker, Channel, Happening

log = logging.getLogger("ringledger.ami.link")
_NEVER = 10 ** 9  # panoramisk's own pinger is useless (no reply timeout): push it out of reach


@dataclass(frozen=True)
class AsteriskServer:
    name: str          # stable, unique: keys the Redis counts and the call keys
    host: str
    port: int = 5038
    username: str = ""
    secret: str = ""


@dataclass(frozen=True)
class WatchSettings:
    ping_interval: float = 5.0      # watchdog: a Ping this often...
    ping_timeout: float = 5.0       # ...must be answered this fast, or the link is aborted
    reconnect_min: float = 1.0      # reconnect delay after a loss; doubles per failure
    reconnect_max: float = 30.0
    reconcile_timeout: float = 10.0
    reconcile_every: float = 600.0  # also realign periodically, in case an event was lost
    hangup_retry: float = 5.0       # resend a Hangup for a channel still alive after this
    admit_timeout: float = 5.0
    admit_on_error: bool = False    # a policy error or timeout refuses the call
    counts_prefix: str = "inuse"
    alive_ttl: int = 30             # seconds a server's counts survive its watcher
    balance_channel: str = "ringledger:balance"
    read_chunk: int = 16 * 1024     # bytes read from a link per loop turn
    recompute_delay: float = 0.01   # gather an account's changes this long before recomputing
    registration_flush: float = 0.5  # registration changes are handed to the policy in batches
    # A call's record made at its Hangup waits this long for the switch's own Cdr event
    # (cdr_manager), whose billsec and disposition win; 0: record at once.
    cdr_wait: float = 2.0


class LinkListener(Protocol):
    def link_events(self, link: "ServerLink", happenings: list[Happening]) -> None: ...
    def link_reconciled(self, link: "ServerLink", happenings: list[Happening]) -> None: ...
    def link_down(self, link: "ServerLink") -> None: ...
    def link_status(self, link: "ServerLink", up: bool, error: str) -> None: ...
    def link_registration(self, link: "ServerLink", fields: dict) -> None: ...


# Events about endpoints (not channels): passed on for registration status.
REGISTRATION_EVENTS = frozenset({"contactstatus", "peerstatus", "devicestatechange"})


class _Manager(Manager):
    """panoramisk Manager with doubling reconnect delays and no reconnect after stop."""

    def __init__(self, *, reconnect_min: float, reconnect_max: float, on_error=None, **config):
        super().__init__(reconnect_timeout=max(1, int(reconnect_min)), **config)
        self.reconnect_timeout = self.reconnect_min = reconnect_min  # panoramisk int()s it
        self.reconnect_max = reconnect_max
        self.stopped = False
        self.on_error = on_error or (lambda message: None)

    def connect(self, *args, **kwargs):
        if self.stopped:
            return None
        return super().connect(*args, **kwargs)

    def connection_made(self, f):
        if self.stopped or f.cancelled():
            return
        exc = f.exception()
        if exc is not None:
            self.on_error(f"cannot connect to {self.config['host']}:{self.config['port']}: "
                          f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc!r}")
        if exc is not None and not isinstance(exc, OSError):  # panoramisk would raise here
            self.log.warning("Cannot connect: %r", exc)
            self.loop.call_later(self.reconnect_timeout, self.connect)
        else:
            super().connection_made(f)
        if exc is not None:
            self._back_off()

    def connection_lost(self, exc):
        super().connection_lost(exc)
        self._back_off()

    def login(self, future):
        if future.cancelled():
            return False
        accepted = super().login(future)
        if not accepted:
            message = future.result().get("Message", "")
            self.log.error("AMI login refused for %r: %s", self.config.get("username"), message)
            self.on_error(f"login refused for {self.config.get('username')!r}: {message or 'no reason given'}")
            if self.protocol is not None and not self.protocol.closed:
                self.protocol.transport.abort()  # retry with backoff; the secret may be fixed
        return accepted

    def _back_off(self):
        self.reconnect_timeout = min(self.reconnect_max, self.reconnect_timeout * 2)


class ServerLink:
    def __init__(self, server: AsteriskServer, settings: WatchSettings, listener: LinkListener):
        self.server = server
        self.name = server.name
        self.settings = settings
        self.listener = listener
        self.tracker = CallTracker(server.name)
        self.manager: _Manager | None = None
        self.up = False
        self.lost_at: float | None = None   # wall time the link went down (None while up)
        self.logins = 0
        self.reconciliations = 0
        self.contact_reads = 0      # PJSIPShowContacts snapshots read
        self.events = 0             # every event received, handled or skipped
        self._handled = self.tracker.handled_events
        self._registrations = (REGISTRATION_EVENTS if getattr(listener, "wants_registrations", False)
                               else frozenset())
        self.error = ""             # the latest connection problem, '' while logged in
        self._abort_reason = ""
        self._tasks: list[asyncio.Task] = []
        self._reconcile_task: asyncio.Task | None = None

    def key(self, ch: Channel) -> str:
        return f"{self.name}/{ch.uniqueid}"

    # ---- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()  # panoramisk must be built inside the running loop
        self.manager = _Manager(
            loop=loop, host=self.server.host, port=self.server.port,
            username=self.server.username, secret=self.server.secret, events="on",
            ping_delay=_NEVER, ping_interval=_NEVER,
            reconnect_min=self.settings.reconnect_min, reconnect_max=self.settings.reconnect_max,
            on_login=self._on_login, on_disconnect=self._on_disconnect, on_error=self._on_error,
            log=logging.getLogger(f"ringledger.ami.panoramisk.{self.name}"))
        self.manager.register_event("*", self._on_event)
        self.manager.connect()
        self._tasks.append(loop.create_task(self._watchdog()))

    def stop(self) -> None:
        for task in self._tasks + [self._reconcile_task]:
            if task is not None:
                task.cancel()
        if self.manager is not None:
            self.manager.stopped = True
            self.manager.close()
        self.up = False

    def send(self, action: dict) -> asyncio.Future | None:
        """Send an action if the link is logged in; None if it is down."""
        protocol = self.manager.protocol if self.manager else None
        if not self.up or protocol is None or protocol.closed:
            return None
        return self.manager.send_action(action)

    def abort(self, why: str) -> None:
        protocol = self.manager.protocol if self.manager else None
        if protocol is not None and not protocol.closed:
            log.warning("AMI %s: %s; dropping the link to reconnect", self.name, why)
            self._abort_reason = why
            protocol.transport.abort()

    # ---- panoramisk callbacks ------------------------------------------------------------
    def _on_event(self, manager, message) -> None:
        self.events += 1
        name = message.event.lower()
        if name not in self._handled:
            if name in self._registrations:
                self.listener.link_registration(
                    self, {k.lower(): v for k, v in message.items()})
            return
        tracker = self.tracker
        store = getattr(message, "_store", None)  # panoramisk keeps {lower key: (key, value)}
        if store is not None:
            happenings = tracker.feed_fields({k: v for k, (_, v) in store.items()}, time.time())
        else:
            happenings = tracker.feed(message, time.time())
        if happenings or tracker.dirty_accounts or tracker.dirty_extensions:
            self.listener.link_events(self, happenings)

    def _on_login(self, manager) -> None:
        manager.reconnect_timeout = manager.reconnect_min
        transport = manager.protocol.transport
        if hasattr(transport, "max_size"):
            # Read at most this much per loop turn (asyncio reads 256 KiB): timers only run
            # between reads, so under an event flood a due cutoff waits ~1 ms, not ~25 ms.
            transport.max_size = self.settings.read_chunk
        self.up = True
        self.logins += 1
        log.info("AMI %s: logged in (login #%d)", self.name, self.logins)
        self.error = ""
        self._report(True, "")
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
        self._reconcile_task = asyncio.get_running_loop().create_task(self._reconcile())

    def _on_disconnect(self, manager, exc) -> None:
        if self.lost_at is None:
            self.lost_at = time.time()
        was_up, self.up = self.up, False
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()  # its answer would belong to a dead session
        log.warning("AMI %s: link lost (%s)", self.name, exc)
        self.listener.link_down(self)
        reason, self._abort_reason = self._abort_reason, ""
        if was_up or not self.error:  # else keep the cause we know (a refused login, say)
            self._on_error(f"link lost: {reason}" if reason else
                           f"link lost ({exc})" if exc else "link closed by the server")

    def _on_error(self, message: str) -> None:
        if message != self.error:
            self.error = message
            self._report(False, message)

    def _report(self, up: bool, error: str) -> None:
        report = getattr(self.listener, "link_status", None)
        if report is not None:
            report(self, up, error)

    # ---- watchdog and reconciliation -----------------------------------------------------
    def reconcile_now(self) -> bool:
        """Realign with the switch's own list of channels now (someone asked for a recount);
        False when the link is down or a reconciliation is already running."""
        if not self.up or (self._reconcile_task is not None and not self._reconcile_task.done()):
            return False
        self._reconcile_task = asyncio.get_running_loop().create_task(self._reconcile())
        return True

    async def _watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        last_reconcile = loop.time()
        while True:
            await asyncio.sleep(self.settings.ping_interval)
            if not self.up:
                continue
            if loop.time() - last_reconcile >= self.settings.reconcile_every:
                last_reconcile = loop.time()
                if self._reconcile_task is None or self._reconcile_task.done():
                    self._reconcile_task = loop.create_task(self._reconcile())
            protocol = self.manager.protocol
            pong = self.send({"Action": "Ping"})
            if pong is None:
                continue
            try:
                # shield: a timeout must not cancel panoramisk's future (it owns it)
                await asyncio.wait_for(asyncio.shield(pong), self.settings.ping_timeout)
            except asyncio.TimeoutError:
                if self.manager.protocol is protocol:  # still the same session
                    self.abort(f"no Pong within {self.settings.ping_timeout}s")

    async def _read_answer_times(self, items: list[dict]) -> None:
        """The switch's own answer time of each answered channel (`CDR(answer,u)`: epoch with
        microseconds), so a call found at reconciliation is billed and cut from its real answer,
        not from a guess. A channel whose answer cannot be read keeps the guess (`estimated`)."""
        up = [item for item in items if item.get("channelstate") == "6" and item.get("channel")]
        replies = [self.send({"Action": "Getvar", "Channel": item["channel"], "Variable": "CDR(answer,u)"})
                   for item in up]
        pending = [(item, reply) for item, reply in zip(up, replies) if reply is not None]
        if not pending:
            return
        done = await asyncio.gather(*(asyncio.wait_for(asyncio.shield(r), self.settings.reconcile_timeout)
                                      for _, r in pending), return_exceptions=True)
        for (item, _), answer in zip(pending, done):
            if isinstance(answer, BaseException) or not getattr(answer, "success", True):
                continue
            try:
                value = float(answer.get("Value") or 0)
            except (TypeError, ValueError):
                continue
            if value > 0:
                item["answered_at"] = value

    async def _reconcile(self) -> None:
        asked_at = self.tracker.seq
        reply = self.send({"Action": "CoreShowChannels"})
        if reply is None:
            return
        try:
            reply = await asyncio.wait_for(reply, self.settings.reconcile_timeout)
        except asyncio.TimeoutError:
            self.abort("no CoreShowChannels answer")
            return
        if not isinstance(reply, list):  # a single Response: Error
            self.abort(f"CoreShowChannels refused: {reply.get('Message', reply)}")
            return
        items = [{k.lower(): v for k, v in m.items()} for m in reply if m.get("Event") == "CoreShowChannel"]
        await self._read_answer_times(items)
        happenings = self.tracker.reconcile(items, time.time(), asked_at, self.lost_at)
        self.lost_at = None
        self.reconciliations += 1
        log.info("AMI %s: reconciled %d live channels (%d changes)",
                 self.name, len(items), len(happenings))
        self.listener.link_reconciled(self, happenings)
        if self._registrations:
            await self._read_contacts()

    async def _read_contacts(self) -> None:
        """Registrations made before this session (the watcher started, or the link was down):
        PJSIPShowContacts lists every contact, one ContactList event each."""
        reply = self.send({"Action": "PJSIPShowContacts"})
        if reply is None:
            return
        try:
            reply = await asyncio.wait_for(reply, self.settings.reconcile_timeout)
        except asyncio.TimeoutError:
            log.warning("AMI %s: no PJSIPShowContacts answer", self.name)
            return
        if not isinstance(reply, list):   # chan_pjsip not loaded, or an older Asterisk
            log.info("AMI %s: PJSIPShowContacts refused: %s", self.name, reply.get("Message", reply))
            return
        contacts = [m for m in reply if m.get("Event") == "ContactList"]
        for message in contacts:
            self.listener.link_registration(self, {k.lower(): v for k, v in message.items()})
        self.contact_reads += 1
        log.info("AMI %s: read %d PJSIP contacts", self.name, len(contacts))
