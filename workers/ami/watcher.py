"""The AMI watcher: admits calls, keeps in-use counts, cuts prepaid calls off, records CDRs.

Start it inside a running loop (panoramisk needs one):

    watcher = Watcher(servers, policy, redis_asyncio_client, WatchSettings())
    await watcher.start()        # or: await watch(servers, policy, redis)  (runs until cancelled)
    ...
    await watcher.stop()

From a synchronous entry point (a `flask ami watch` command): `run(servers, policy, redis_url)`.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .balance import RECOUNT, listen_balance_changes
from .calls import CALL_ANSWERED, CALL_ENDED, CALL_STARTED, CDR_READY, CDR_SWITCH, Channel, Happening
from .counts import CountsPublisher, InUseCounts
from .link import AsteriskServer, ServerLink, WatchSettings
from .policy import (CHANNEL_LIMIT, CPS_LIMIT, NO_CREDIT, POLICY_ERROR, Admission, CallPolicy, LiveCall)
from .registrations import Registration, registration_of

__all__ = ["AsteriskServer", "WatchSettings", "Watcher", "watch", "run"]
log = logging.getLogger("ringledger.ami.watcher")

# Q.850 causes sent with our Hangup actions.
CREDIT_EXHAUSTED_CAUSE = 16        # normal clearing: the call was fine, the credit ran out
REFUSED_CAUSE = 21                 # call rejected: account status, country, credit
HANGUP_CAUSES = {CHANNEL_LIMIT: 34, CPS_LIMIT: 34,   # no circuit/channel available
                 POLICY_ERROR: 41}                   # temporary failure


@dataclass(slots=True)
class _Cutoff:
    deadline: float                 # wall clock, as the policy returned it
    handle: asyncio.TimerHandle
    link: ServerLink
    channel: Channel


class Watcher:
    def __init__(self, servers: Iterable[AsteriskServer], policy: CallPolicy, redis,
                 settings: WatchSettings | None = None):
        self.settings = settings or WatchSettings()
        self.policy = policy
        self.redis = redis
        self.counts = InUseCounts(redis, self.settings.counts_prefix, self.settings.alive_ttl)
        # Optional policy hooks: registrations(list[Registration]), link_status(server, up,
        # error, when), attach(watcher) (called once at start, e.g. to share self.counts).
        self.wants_registrations = callable(getattr(policy, "registrations", None))
        self.links: dict[str, ServerLink] = {}
        self.publishers: dict[str, CountsPublisher] = {}
        for server in servers:
            self._new_link(server)
        self.subscribed = asyncio.Event()   # balance notices are being received
        self.cutoffs = 0                    # Hangups sent because credit ran out (retries not counted)
        self.refusals = 0                   # Hangups sent because admission said no
        self._timers: dict[str, _Cutoff] = {}
        self._hangups: dict[str, float] = {}          # call key -> loop time of last Hangup
        self._deferred: dict[str, tuple[ServerLink, Channel, int]] = {}  # link was down
        self._dirty: set[str] = set()
        self._recompute_handle: asyncio.TimerHandle | None = None
        self._versions: dict[str, int] = {}
        self._admission_tail: dict[str, asyncio.Future] = {}
        self._first_used: set[str] = set()
        # account -> {call key: LiveCall}: answered calls that ended, until their record is in
        # the ledger (the balance the policy reads does not show their cost before that).
        self._unbilled: dict[str, dict[str, LiveCall]] = {}
        self._held: dict[str, tuple[dict, asyncio.TimerHandle]] = {}   # records awaiting the switch's Cdr
        self._tasks: set[asyncio.Task] = set()        # short-lived: admissions, CDRs, ...
        self._chores: list[asyncio.Task] = []         # long-lived: heartbeat, balance notices
        self._stopped = False
        self._registrations: dict[str, Registration] = {}   # endpoint -> latest, not yet handed on
        self._registration_handle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _new_link(self, server: AsteriskServer) -> ServerLink:
        link = ServerLink(server, self.settings, self)
        self.links[server.name] = link
        self.publishers[server.name] = CountsPublisher(self.counts, server.name, link.tracker)
        return link

    # ---- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        attach = getattr(self.policy, "attach", None)
        if callable(attach):
            attach(self)
        for publisher in self.publishers.values():
            publisher.rebuild()  # whatever a previous run left is stale until reconciled
        for link in self.links.values():
            link.start()
        self._chores.append(self.loop.create_task(self._keep_alive()))
        if self.settings.balance_channel:
            self._chores.append(self.loop.create_task(listen_balance_changes(
                self.redis, self.balance_changed, self.settings.balance_channel,
                on_subscribed=self._on_subscribed, stopped=lambda: self._stopped)))

    async def stop(self) -> None:
        self._stopped = True
        for link in self.links.values():
            link.stop()
        for key in list(self._held):   # the switch's Cdr will not come to us now
            self._release_held(key)
        if self._registration_handle is not None:
            self._registration_handle.cancel()
            self._registration_handle = None
        if self._registrations:  # hand the last ones on rather than lose them
            try:
                await asyncio.wait_for(self._flush_registrations_now(), 5)
            except Exception:
                log.exception("last registration changes not saved")
        for cutoff in self._timers.values():
            cutoff.handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks) + self._chores
        for task in tasks:
            task.cancel()
        if tasks:
            # redis-py can turn a cancellation inside a connect into a ConnectionError, which
            # a retry loop would swallow: the loops check _stopped, and stop() never hangs.
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for task in stuck:
                log.warning("watcher task %s did not stop", task.get_name())
        for publisher in self.publishers.values():
            await publisher.close()

    @property
    def pending_tasks(self) -> int:
        """Admissions, CDR recordings and async deadline computations still running."""
        return len(self._tasks)

    def balance_changed(self, account_number: str) -> None:
        """The account's balance or credit changed: recompute its calls' deadlines now. The
        RECOUNT notice instead realigns every link's in-use counts with the switch."""
        if account_number == RECOUNT:
            started = [link.name for link in self.links.values() if link.reconcile_now()]
            log.info("in-use recount asked: reconciling %s", ", ".join(started) or "no link (down or busy)")
            return
        self._mark(account_number)

    def deadline_of(self, link_name: str, uniqueid: str) -> float | None:
        cutoff = self._timers.get(f"{link_name}/{uniqueid}")
        return cutoff.deadline if cutoff else None

    async def reconfigure(self, servers: Iterable[AsteriskServer]) -> None:
        """Follow a new list of servers: links whose settings changed are rebuilt, removed
        ones are dropped (their counts leave Redis), new ones start; the others go on."""
        wanted = {s.name: s for s in servers}
        for name, link in list(self.links.items()):
            if wanted.get(name) != link.server:
                await self._drop_link(link, forget=name not in wanted)
        for name, server in wanted.items():
            if name not in self.links:
                link = self._new_link(server)
                self.publishers[name].rebuild()
                link.start()

    async def _drop_link(self, link: ServerLink, forget: bool) -> None:
        """Stop following a server. Its live calls are no longer counted, cut off or billed
        here (docs/ami.md, "Known limits"); the accounts' other calls are recomputed."""
        link.stop()
        del self.links[link.name]
        publisher = self.publishers.pop(link.name)
        await publisher.close()
        for key, cutoff in list(self._timers.items()):
            if cutoff.link is link:
                cutoff.handle.cancel()
                del self._timers[key]
        for key, (owner, _, _) in list(self._deferred.items()):
            if owner is link:
                del self._deferred[key]
        for account in link.tracker.accounts():
            self._mark(account)
        if forget:
            try:
                await self.counts.forget(link.name)
            except (RedisError, OSError) as exc:
                log.warning("in-use counts of %s not removed: %s", link.name, exc)
        log.info("AMI %s: no longer followed", link.name)

    # ---- what the links report -----------------------------------------------------------
    def link_events(self, link: ServerLink, happenings: list[Happening]) -> None:
        for kind, account, ch, record in happenings:
            if kind == CALL_STARTED:
                self._spawn(self._admit(link, ch, account))
                self._mark(account)
            elif kind == CALL_ANSWERED:
                self._mark(account)
            elif kind == CALL_ENDED:
                key = link.key(ch)
                if ch.answered is not None and not ch.refused and ch.billed:
                    self._unbilled.setdefault(account, {})[key] = self._live(link, ch, ended=time.time())
                self._cancel(key)
                self._hangups.pop(key, None)
                self._deferred.pop(key, None)
                self._mark(account)
            elif kind == CDR_READY:
                if record.get("source") == "hangup" and self.settings.cdr_wait > 0:
                    self._hold_for_switch_cdr(record)
                else:
                    self._record_cdr(record)
            elif kind == CDR_SWITCH:
                self._switch_cdr(record)
        tracker = link.tracker
        if tracker.dirty_accounts or tracker.dirty_extensions:
            self.publishers[link.name].changed()

    def link_reconciled(self, link: ServerLink, happenings: list[Happening]) -> None:
        # A Hangup sent on an earlier session may never have been acted on: a call the snapshot
        # shows still alive past its deadline is hung up at once, not after `hangup_retry`.
        prefix = f"{link.name}/"   # ServerLink.key()
        for key in [k for k in self._hangups if k.startswith(prefix)]:
            del self._hangups[key]
        self.link_events(link, happenings)
        hook = getattr(self.policy, "link_reconciled", None)   # e.g. bill from the switch's CDRs
        if callable(hook) and not self._stopped:
            self._spawn(_call(hook, link.name))
        self.publishers[link.name].rebuild()
        for account in link.tracker.accounts():
            self._mark(account)
        for key, (owner, ch, cause) in list(self._deferred.items()):
            if owner is link:
                del self._deferred[key]
                if link.tracker.channel(ch.uniqueid) is ch:
                    self._hang_up(link, ch, cause)

    def link_down(self, link: ServerLink) -> None:
        pass  # calls go on without us; deadlines keep running; reconciliation catches up

    def link_status(self, link: ServerLink, up: bool, error: str) -> None:
        report = getattr(self.policy, "link_status", None)
        if callable(report) and not self._stopped:
            self._spawn(_call(report, link.name, up, error, time.time()))

    def link_registration(self, link: ServerLink, fields: dict) -> None:
        if not self.wants_registrations or self._stopped:
            return
        reg = registration_of(fields, time.time())
        if reg is None:
            return
        self._registrations[reg.endpoint] = reg   # the latest state of an endpoint wins
        if self._registration_handle is None:
            self._registration_handle = self.loop.call_later(
                self.settings.registration_flush, self._flush_registrations)

    def _flush_registrations(self) -> None:
        self._registration_handle = None
        self._spawn(self._flush_registrations_now())

    async def _flush_registrations_now(self) -> None:
        batch, self._registrations = list(self._registrations.values()), {}
        if batch:
            await _maybe(self.policy.registrations(batch))

    # ---- admission -----------------------------------------------------------------------
    async def _admit(self, link: ServerLink, ch: Channel, account: str) -> None:
        # One admission at a time per account, so each sees the calls admitted before it.
        previous = self._admission_tail.get(account)
        mine = self.loop.create_future()
        self._admission_tail[account] = mine
        try:
            if previous is not None:
                await asyncio.shield(previous)  # cancelling us must not cancel the chain
            await self._admit_one(link, ch, account)
        finally:
            if not mine.done():
                mine.set_result(None)
            if self._admission_tail.get(account) is mine:
                del self._admission_tail[account]

    async def _admit_one(self, link: ServerLink, ch: Channel, account: str) -> None:
        tracker = link.tracker
        if tracker.channel(ch.uniqueid) is not ch or ch.account != account:
            return  # ended, or moved to another account (which has its own admission)
        publisher = self.publishers.get(link.name)
        if publisher is None or self.links.get(link.name) is not link:
            return  # the server was dropped (reconfigure) while this call waited its turn
        tracker.admit(ch.uniqueid)
        publisher.changed()
        await publisher.synced()  # the policy reads an in-use count that includes this call
        try:
            admission = await asyncio.wait_for(
                _maybe(self.policy.admit(account, ch.destination, time.time())),
                self.settings.admit_timeout)
        except Exception:
            log.exception("admission of %s on account %s failed", ch.name, account)
            admission = Admission(self.settings.admit_on_error, POLICY_ERROR)
        if (tracker.channel(ch.uniqueid) is not ch or ch.account != account
                or self.links.get(link.name) is not link):
            return
        if admission.allowed:
            if account not in self._first_used:
                self._first_used.add(account)
                self._spawn(_call(self.policy.first_use, account, ch.started))
            return
        tracker.refuse(ch.uniqueid)
        publisher.changed()
        self._cancel(link.key(ch))
        self._mark(account)
        cause = HANGUP_CAUSES.get(admission.cause, REFUSED_CAUSE)
        log.warning("call refused on account %s (%s): hanging up %s to %s with cause %d",
                    account, admission.cause, ch.name, ch.destination or "?", cause)
        self.refusals += 1
        self._hang_up(link, ch, cause)

    # ---- deadlines -----------------------------------------------------------------------
    def _mark(self, account: str) -> None:
        """Recompute this account's deadlines soon: all changes within `recompute_delay` cost
        one computation (the rating engine's is not cheap), for at most that much delay."""
        if not account or self._stopped:
            return
        self._dirty.add(account)
        if self._recompute_handle is None:
            self._recompute_handle = self.loop.call_later(self.settings.recompute_delay,
                                                          self._recompute_dirty)

    def _recompute_dirty(self) -> None:
        self._recompute_handle = None
        dirty, self._dirty = self._dirty, set()
        for account in dirty:
            self._recompute(account)

    def _recompute(self, account: str) -> None:
        calls = [(link, ch) for link in self.links.values()
                 for ch in link.tracker.calls_of(account)]
        if not calls:
            return
        live = [self._live(link, ch) for link, ch in calls]
        live += self._unbilled.get(account, {}).values()
        version = self._versions[account] = self._versions.get(account, 0) + 1
        try:
            deadlines = self.policy.deadlines(account, live, time.time())
        except Exception:
            log.exception("deadlines of account %s failed; keeping the previous ones", account)
            return
        if inspect.isawaitable(deadlines):
            self._spawn(self._apply_later(account, version, calls, deadlines))
        else:
            self._apply(calls, deadlines)

    async def _apply_later(self, account, version, calls, pending) -> None:
        try:
            deadlines = await pending
        except Exception:
            log.exception("deadlines of account %s failed; keeping the previous ones", account)
            return
        if self._versions.get(account) == version:  # else a newer computation supersedes it
            self._apply(calls, deadlines)

    @staticmethod
    def _live(link: ServerLink, ch: Channel, ended: float | None = None) -> LiveCall:
        return LiveCall(link.key(ch), link.name, ch.name, ch.uniqueid, ch.linkedid, ch.account,
                        ch.extension, ch.destination, ch.started, ch.answered, ended)

    def _apply(self, calls, deadlines) -> None:
        loop_now, wall_now = self.loop.time(), time.time()
        for link, ch in calls:
            if link.tracker.channel(ch.uniqueid) is not ch or ch.refused:
                continue
            key = link.key(ch)
            deadline = deadlines.get(key)
            log.debug("deadline of %s (answered %s): %s", ch.name, ch.answered, deadline)
            if (deadline is not None and ch.answered is not None and abs(deadline - ch.answered) < 0.001
                    and key not in self._timers):
                self._refuse_unaffordable(link, ch)   # not one second of it can be paid for
                continue
            cutoff = self._timers.get(key)
            if cutoff is not None:
                if deadline is not None and abs(cutoff.deadline - deadline) < 0.001:
                    continue  # same deadline, give or take float noise: keep the timer
                cutoff.handle.cancel()
                del self._timers[key]
            if deadline is not None:
                handle = self.loop.call_at(loop_now + (deadline - wall_now), self._cut_off, key)
                self._timers[key] = _Cutoff(deadline, handle, link, ch)

    def _refuse_unaffordable(self, link: ServerLink, ch: Channel) -> None:
        """A call answered while the account's other live calls already hold its credit: it
        is refused as admission refuses (the calls already running keep their deadlines)."""
        if link.tracker.refuse(ch.uniqueid):
            self.publishers[link.name].changed()
        self.refusals += 1
        log.warning("call refused on account %s (%s): hanging up %s to %s with cause %d", ch.account,
                    NO_CREDIT, ch.name, ch.destination or "?", REFUSED_CAUSE)
        self._hang_up(link, ch, REFUSED_CAUSE)

    def _cancel(self, key: str) -> None:
        cutoff = self._timers.pop(key, None)
        if cutoff is not None:
            cutoff.handle.cancel()

    def _cut_off(self, key: str) -> None:
        cutoff = self._timers.pop(key, None)
        if cutoff is None:
            return
        link, ch = cutoff.link, cutoff.channel
        if link.tracker.channel(ch.uniqueid) is not ch:
            return
        log.info("credit exhausted on account %s: hanging up %s (%.3fs after its deadline)",
                 ch.account, ch.name, time.time() - cutoff.deadline)
        if self._hang_up(link, ch, CREDIT_EXHAUSTED_CAUSE):
            self.cutoffs += 1
        # Still there after the retry delay? The recomputed (past) deadline fires again.
        self.loop.call_later(self.settings.hangup_retry, self._mark, ch.account)

    def _hang_up(self, link: ServerLink, ch: Channel, cause: int) -> bool:
        """Send the Hangup (True), unless one went out less than `hangup_retry` ago (a timer
        re-armed by a recomputation fired again) or the link is down (deferred)."""
        key = link.key(ch)
        now = self.loop.time()
        last = self._hangups.get(key)
        if last is not None and now - last < self.settings.hangup_retry:
            return False
        reply = link.send({"Action": "Hangup", "Channel": ch.name, "Cause": str(cause)})
        if reply is None:  # link down: send it once reconciliation shows the call still there
            self._deferred[key] = (link, ch, cause)
            return False
        self._hangups[key] = now
        reply.add_done_callback(functools.partial(_hangup_answered, link.name, ch.name))
        return True

    # ---- CDRs ----------------------------------------------------------------------------
    def _hold_for_switch_cdr(self, record: dict) -> None:
        key = f"{record['server']}/{record['uniqueid']}"
        handle = self.loop.call_later(self.settings.cdr_wait, self._release_held, key)
        self._held[key] = (record, handle)

    def _release_held(self, key: str) -> None:
        """No Cdr came from the switch in time: the watcher's own record is the bill."""
        held = self._held.pop(key, None)
        if held is not None:
            held[1].cancel()
            self._record_cdr(held[0])

    def _switch_cdr(self, switch: dict) -> None:
        """The switch's clock wins: its billsec and disposition replace the watcher's own;
        the watcher's measure stays on the record (`measured_billsec`) when they differ."""
        key = f"{switch['server']}/{switch['uniqueid']}"
        held = self._held.pop(key, None)
        if held is None:
            log.warning("Cdr %s from the switch came after the call was recorded (billsec %s): not applied",
                        key, switch["billsec"])
            return
        record, handle = held
        handle.cancel()
        record = dict(record, source="cdr")
        if switch["billsec"] is not None and switch["billsec"] != record["billsec"]:
            log.info("call %s: the switch billed %s s, the watcher measured %s s: the switch's wins",
                     key, switch["billsec"], record["billsec"])
            record["measured_billsec"], record["billsec"] = record["billsec"], switch["billsec"]
        if switch["disposition"]:
            record["disposition"] = switch["disposition"]
        if switch.get("carrier"):
            record["carrier"] = switch["carrier"]
        self._record_cdr(record)

    def _billed(self, record: dict) -> None:
        """The record is in the ledger (or given up on): its cost is in the balance now."""
        calls = self._unbilled.get(record["accountcode"])
        if calls is not None:
            calls.pop(f"{record['server']}/{record['uniqueid']}", None)
            if not calls:
                del self._unbilled[record["accountcode"]]
        self._mark(record["accountcode"])

    def _record_cdr(self, record: dict) -> None:
        try:
            result = self.policy.record_cdr(record)
        except Exception:
            log.exception("recording CDR %s failed; retrying", record["uniqueid"])
            self._spawn(self._retry_cdr(record))
            return
        if inspect.isawaitable(result):
            self._spawn(self._await_cdr(record, result))
        else:
            self._billed(record)

    async def _await_cdr(self, record: dict, pending) -> None:
        try:
            await pending
        except Exception:
            log.exception("recording CDR %s failed; retrying", record["uniqueid"])
            await self._retry_cdr(record)
            return
        self._billed(record)  # the balance moved: deadlines follow

    async def _retry_cdr(self, record: dict, attempts: int = 3) -> None:
        for attempt in range(attempts):
            await asyncio.sleep(0.5 * 2 ** attempt)
            try:
                await _maybe(self.policy.record_cdr(record))
            except Exception:
                log.exception("recording CDR %s failed (retry %d)", record["uniqueid"], attempt + 1)
                continue
            self._billed(record)
            return
        log.error("CDR NOT RECORDED, bill it by hand: %r", record)
        self._billed(record)

    # ---- background chores ---------------------------------------------------------------
    async def _keep_alive(self) -> None:
        # redis-py may swallow a cancellation that lands inside its connect: check before
        # every wait whether we are stopping, so stop() never waits for a sleeping loop.
        task = asyncio.current_task()

        def ending() -> bool:
            return self._stopped or task.cancelling() > 0

        while not ending():
            for name in list(self.links):
                try:
                    await self.counts.touch(name)
                except (RedisError, OSError) as exc:
                    if ending():
                        return
                    log.warning("in-use heartbeat of %s not written: %s", name, exc)
            if ending():
                return
            await asyncio.sleep(max(1.0, self.settings.alive_ttl / 3))

    def _on_subscribed(self) -> None:
        self.subscribed.set()
        for link in self.links.values():  # notices sent while unsubscribed were lost
            for account in link.tracker.accounts():
                self._mark(account)

    def _spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("watcher task failed", exc_info=task.exception())


async def _maybe(value):
    return await value if inspect.isawaitable(value) else value


async def _call(fn, *args):
    """fn(*args), awaited if need be; made only when the task runs (a task cancelled before
    it starts leaves no coroutine never awaited)."""
    return await _maybe(fn(*args))


def _hangup_answered(server: str, channel: str, reply: asyncio.Future) -> None:
    if reply.cancelled():
        return
    message = reply.result()
    if not getattr(message, "success", True):  # the channel may have just gone: harmless
        log.info("AMI %s: Hangup %s answered %s", server, channel, message.get("Message", ""))


async def watch(servers: Iterable[AsteriskServer], policy: CallPolicy, redis,
                settings: WatchSettings | None = None) -> None:
    """Run a watcher until cancelled."""
    watcher = Watcher(servers, policy, redis, settings)
    await watcher.start()
    try:
        await asyncio.Event().wait()
    finally:
        await watcher.stop()


def run(servers: Iterable[AsteriskServer], policy: CallPolicy, redis_url: str,
        settings: WatchSettings | None = None) -> None:
    """Blocking entry point for a CLI command: one process per switch cluster."""
    async def main():
        client = aioredis.from_url(redis_url)
        try:
            await watch(servers, policy, client, settings)
        finally:
            await client.aclose()
    asyncio.run(main())
