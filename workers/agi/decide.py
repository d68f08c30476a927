"""One decision per outbound call: who calls, may they, and for how long at most.

The account checks (status, expiry, CPS, max channels, rate, opened country, credit for the
first block) are the AMI watcher's own `DatabasePolicy.admit`, so both processes refuse the
same calls for the same causes and read the same Redis in-use counts and CPS window. Added
here: identifying the account from the calling endpoint, the account's allow/deny prefixes,
and the allowed duration used as the switch's absolute limit (a backstop to the watcher).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import null, select

from workers.ami.db_policy import INTERNAL, DatabasePolicy, bundle_period_start
from workers.ami.policy import CHANNEL_LIMIT, CPS_LIMIT, NO_CREDIT, POLICY_ERROR, UNKNOWN_ACCOUNT
from workers.ami.watcher import HANGUP_CAUSES, REFUSED_CAUSE

log = logging.getLogger("ringledger.agi.decide")
NO_DESTINATION = "no_destination"
Q850 = {**HANGUP_CAUSES, "no_route": 3, "unassigned_number": 1}   # 3: no route; 1: unallocated number


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    cause: str = ""
    account: str = ""
    destination: str = ""
    max_seconds: int = 0          # 0 with allowed: no limit (internal call)
    play_no_credit: bool = False
    legs: tuple = ()              # app.routing.lcr.Leg, in the order Dial tries them
    caller_id: str = ""           # the number to present ('' : leave it)

    @property
    def q850(self) -> int:
        return Q850.get(self.cause, REFUSED_CAUSE)


@dataclass(frozen=True, slots=True)
class TrunkLimits:
    """A customer IP trunk placing the call: its endpoint and its own limits (0: none)."""
    endpoint: str
    call_limit: int
    cps_limit: int


class LocalLeg:
    """A call that stays on the switch: ring these SIP endpoints together."""
    carrier_id = 0

    def __init__(self, *endpoints: str):
        self.dial = "&".join(f"PJSIP/{e}" for e in endpoints)


class CallControl:
    """`cached` (the server's default): the fast path of workers/agi/cache.py, one SQL statement
    and one Redis round trip per call, slow-changing rows cached under fingerprints. Without
    it, the reference path below (every row read again per call); both decide the same."""

    def __init__(self, app, counts, *, policy: DatabasePolicy | None = None, threads: int = 8,
                 cached: bool = True, live_db: bool = True):
        from .cache import FastPath, LiveCounts

        self.counts = counts
        self.policy = policy or DatabasePolicy(app, counts=counts, threads=threads)
        if cached:
            # The fast path's fingerprints are PostgreSQL SQL (md5, string_agg); the embedded
            # SQLite of a first run decides on the reference path.
            from app.extensions import db

            with app.app_context():
                cached = db.engine.dialect.name == "postgresql"
        self.fast = FastPath(self.policy) if cached else None
        self.live_counts = LiveCounts(counts) if cached and counts is not None else None
        # The fast path's statement on the event loop (asyncpg), unless `live_db=False`: then
        # in a policy thread through the session, as the reference path reads.
        self.live = None
        if cached and live_db:
            from app.extensions import db

            from .cache import live_statements
            from .live_db import LiveReader, Statement, asyncpg_dsn

            with app.app_context():
                self.live = LiveReader(asyncpg_dsn(db.engine.url), size=app.config.get("AGI_DB_CONNECTIONS", 4))
                self._statements = tuple(Statement(s) for s in live_statements())
                self._period = (None, None)          # (UTC day, its bundle period start)

    def warm_up(self, *, wait: bool = False) -> None:
        """The rate sheets' prefix indexes, then (fast path) every active account's profile and
        the routing snapshot, loaded in bulk; in the background unless `wait`."""
        self.policy.warm_up(wait=wait)
        if self.fast is not None:
            if wait:
                self.policy._in_app(self.fast.warm_up, ())
            else:
                self.policy._builder.submit(self.policy._in_app, self.fast.warm_up, ())

    def close(self) -> None:
        if self.fast is not None:
            self.fast.close()       # ends the notice listener at its next poll
        if self.live is not None:
            self.live.close()
        if self.live_counts is not None:
            self.live_counts.close()
        self.policy.close()

    async def pin_account(self, pin: str) -> str | None:
        """The account number whose calling-card PIN this is (None: no such PIN)."""
        return await self.policy._run(self._pin_account, pin)

    def _pin_account(self, pin: str) -> str | None:
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.scope import unscoped

        if not pin:
            return None
        with unscoped():
            return db.session.execute(select(Account.account_number).where(Account.pin == pin)).scalar_one_or_none()

    async def decide(self, endpoint: str, dialled: str, now: float, *, account: str | None = None,
                     presented: str = "") -> Decision:
        """Decide a call from an extension's `endpoint`, or (calling card) for `account`."""
        destination = "".join(ch for ch in (dialled or "") if ch.isdigit() or ch in "*#+").lstrip("+")
        # Customer IP trunks (`trunk-<id>`) take the reference path: the fast path's profiles do
        # not know trunks and their own limits yet.
        if self.fast is not None and not (endpoint or "").startswith("trunk-"):
            return await self._decide_cached(endpoint, destination, now, account, presented)
        try:
            who = await self.policy._run(self._identify, endpoint, destination, account)
        except Exception:
            log.exception("call from %s to %s: identification failed", endpoint, dialled)
            return Decision(False, POLICY_ERROR)
        if isinstance(who, Decision):
            return who
        number, play, extension_id, local, destination, trunk = who
        if trunk is not None and self.counts is not None:
            refusal = await self._trunk_refusal(trunk, now)
            if refusal:
                return Decision(False, refusal, number, destination)
        if not destination:
            return Decision(False, NO_DESTINATION, number)
        if local is not None:         # a sibling extension by its short number: free, no limit
            return Decision(True, "", number, destination, 0, legs=(local,))
        admission = await self.policy.admit(number, destination, now)
        if not admission.allowed:
            return Decision(False, admission.cause, number, destination,
                            play_no_credit=play and admission.cause == NO_CREDIT)
        live = await self.counts.account(number) if self.counts is not None else 1
        seconds, legs, caller_id = await self.policy._run(self._limit_and_route, number, extension_id,
                                                          destination, max(live, 1), presented)
        if seconds is not None and seconds <= 0:
            return Decision(False, NO_CREDIT, number, destination, play_no_credit=play)
        if legs is not None and not legs:
            log.info("account %s refused (no_route): no route or carrier for %s", number, destination)
            return Decision(False, "no_route", number, destination)
        return Decision(True, "", number, destination, seconds or 0, legs=tuple(legs or ()),
                        caller_id=caller_id)

    async def _trunk_refusal(self, trunk: "TrunkLimits", now: float) -> str:
        """A customer trunk's own limits, with the account's mechanism under a per-trunk key:
        the CPS sliding window of `trunk:<endpoint>` and the watcher's live-channel count of the
        endpoint (its channels are `PJSIP/trunk-<id>-…`; the count includes this call)."""
        if trunk.cps_limit:
            attempts = await self.counts.attempts_in_window(f"trunk:{trunk.endpoint}", now)
            if attempts > trunk.cps_limit:
                log.info("trunk %s refused (%s): %d call attempts within 1 s, limit %d",
                         trunk.endpoint, CPS_LIMIT, attempts, trunk.cps_limit)
                return CPS_LIMIT
        if trunk.call_limit:
            live = await self.counts.extension(trunk.endpoint)
            if live > trunk.call_limit:
                log.info("trunk %s refused (%s): this call would be number %d, limit %d",
                         trunk.endpoint, CHANNEL_LIMIT, live, trunk.call_limit)
                return CHANNEL_LIMIT
        return ""

    async def _decide_cached(self, endpoint: str, destination: str, now: float, account: str | None,
                             presented: str) -> Decision:
        """decide() on the fast path: one statement (asyncpg, on the loop), identify + admit's
        database checks + route on the cached parts, then CPS and channels (one Redis round trip),
        then the seconds. What the caches cannot answer (a profile or the routing to reload, an
        unrated destination) is decided again in a policy thread, reloading it."""
        try:
            prepared = None
            if self.live is not None:
                prepared = await self._prepare_on_loop(endpoint, destination, account, now, presented)
            if prepared is None:
                prepared = await self.policy._run(self.fast.prepare, endpoint, destination, account, now, presented)
        except Exception:
            log.exception("call from %s to %s: decision failed", endpoint, destination)
            return Decision(False, POLICY_ERROR)
        if isinstance(prepared, Decision):
            return prepared
        p = prepared
        refused = None
        live = 1
        if self.live_counts is not None:
            try:
                live, attempts = await self.live_counts.read(p.number, now, cps=bool(p.cps_limit))
            except Exception:
                log.exception("account %s: in-use counts unreadable", p.number)
                return Decision(False, POLICY_ERROR, p.number, p.destination)
            if p.cps_limit and attempts > p.cps_limit:
                log.info("account %s refused (%s): %d call attempts within 1 s, limit %d",
                         p.number, CPS_LIMIT, attempts, p.cps_limit)
                refused = CPS_LIMIT
            elif p.max_channels and live > p.max_channels:   # the count includes this call
                log.info("account %s refused (%s): this call would be number %d, limit %d",
                         p.number, CHANNEL_LIMIT, live, p.max_channels)
                refused = CHANNEL_LIMIT
        if refused is None and p.late is not None:
            refused = p.late.cause
        if refused is not None:
            return Decision(False, refused, p.number, p.destination, play_no_credit=p.play and refused == NO_CREDIT)
        seconds = self.fast.seconds(p, max(live, 1))
        if seconds is not None and seconds <= 0:
            return Decision(False, NO_CREDIT, p.number, p.destination, play_no_credit=p.play)
        if p.legs is not None and not p.legs:
            log.info("account %s refused (no_route): no route or carrier for %s", p.number, p.destination)
            return Decision(False, "no_route", p.number, p.destination)
        return Decision(True, "", p.number, p.destination, seconds or 0, legs=tuple(p.legs or ()),
                        caller_id=p.caller_id)

    async def _prepare_on_loop(self, endpoint: str, destination: str, account: str | None, now: float,
                               presented: str):
        """FastPath.decide_row on a row read here; None when the caches miss."""
        from datetime import datetime, timezone

        from .cache import Miss

        today = datetime.now(timezone.utc).date()
        by_endpoint, by_number = self._statements
        if self._period[0] != today:
            self._period = (today, bundle_period_start(today))
        params = {"period": self._period[1]}
        if account is None:
            params["endpoint"] = endpoint
            row = await self.live.fetchrow(by_endpoint, params)
        else:
            params["number"] = account
            row = await self.live.fetchrow(by_number, params)
        try:
            return self.fast.decide_row(row, endpoint, destination, now, presented, today, cached_only=True)
        except Miss as miss:
            self.fast.misses[str(miss)] = self.fast.misses.get(str(miss), 0) + 1
            return None

    # ---- database work (in the policy's threads) -----------------------------------------
    def _identify(self, endpoint: str, destination: str, account_number: str | None = None):
        from app.accounts.models import Account
        from app.extensions import db
        from app.routing.local import sibling_endpoint
        from app.routing.rules import rule_refusal, rules_of
        from app.routing.translation import rules_of as translation_rules
        from app.routing.translation import translate
        from provisioning.models import Extension
        from provisioning.trunks import CustomerTrunk, trunk_id_of
        from tenants.scope import unscoped

        columns = (Account.id, Account.account_number, Account.play_insufficient_credit)
        trunk = None
        with unscoped():
            if account_number is not None:       # calling card: no extension of its own
                row = db.session.execute(select(*columns, null(), Account.country)
                                         .where(Account.account_number == account_number)).first()
            elif (trunk_id := trunk_id_of(endpoint)) is not None:   # a customer IP trunk
                found = db.session.execute(
                    select(*columns, null(), Account.country, CustomerTrunk.call_limit, CustomerTrunk.cps_limit)
                    .join(CustomerTrunk, CustomerTrunk.account_id == Account.id)
                    .where(CustomerTrunk.id == trunk_id, CustomerTrunk.enabled.is_(True))).first()
                row = None if found is None else found[:5]
                if found is not None:
                    trunk = TrunkLimits(endpoint, found[5] or 0, found[6] or 0)
            else:
                row = db.session.execute(
                    select(*columns, Extension.id, Account.country)
                    .join(Extension, Extension.account_id == Account.id)
                    .where(Extension.sip_username == endpoint, Extension.active.is_(True))).first()
            if row is None:
                log.info("call from unknown endpoint %r refused (%s)", endpoint, UNKNOWN_ACCOUNT)
                return Decision(False, UNKNOWN_ACCOUNT)
            account_id, number, play, extension_id, country = row
            sibling = sibling_endpoint(account_id, destination) if destination else None
            if sibling is not None:
                return number, bool(play), extension_id, LocalLeg(sibling), destination, trunk
            destination = translate(translation_rules(account_id), destination, country or "")
            refusal = rule_refusal(rules_of(account_id), destination) if destination else None
        if refusal:
            log.info("account %s refused (%s): %s matches its number rules", number, refusal, destination)
            return Decision(False, refusal, number, destination)
        return number, bool(play), extension_id, None, destination, trunk

    def _limit_and_route(self, number: str, extension_id: int, destination: str, live: int, presented: str):
        """(seconds, legs, caller ID number). Seconds this call may last on its share of the credit (live calls of
        the account, this one included, share it equally), None for an internal call; legs
        None when no routing is configured or the call stays on the switch (internal)."""
        from app.rating.duration import max_call_seconds
        from app.routing import lcr
        from tenants.scope import unscoped

        from app.routing.rules import caller_id_for

        account = self.policy._account(number)
        with unscoped():
            caller_id = caller_id_for(account.id, extension_id, presented)
        terms = self.policy._terms_of(account)
        tariff = terms.tariff(destination)
        if tariff is None or tariff is INTERNAL:
            return None, None, caller_id
        bundle = self.policy._bundle_left(terms, terms.day).get(tariff.country, 0) // live
        share = (account.available_credit / live).quantize(Decimal("0.000001"), ROUND_DOWN)
        seconds = max_call_seconds(share, tariff, account.currency, bundle_seconds=bundle,
                                   short_call=terms.short_call, places=self.policy.charge_places(account))
        with unscoped():
            if not lcr.routing_configured():
                return seconds, None, caller_id
            group = lcr.group_for(account.id, extension_id)
            return seconds, ([] if group is None else lcr.legs_for(group, destination, self._buy_rate)), caller_id

    def _buy_rate(self, sheet_id: int, destination: str):
        from datetime import datetime, timezone

        from app.extensions import db
        from app.rating.models import RateSheet

        version = db.session.execute(select(RateSheet.version).where(RateSheet.id == sheet_id)).scalar_one()
        index = self.policy._index_of(sheet_id, (version, datetime.now(timezone.utc).date()))
        tariff = index.lookup(destination) if index is not None else None
        return None if tariff is None else tariff.rate_per_minute


__all__ = ["CallControl", "Decision", "CHANNEL_LIMIT", "CPS_LIMIT"]


class InboundControl:
    """A call to a DID: ring its extension (or all the account's); refuse an unassigned one."""

    def __init__(self, policy: DatabasePolicy):
        self.policy = policy

    async def decide(self, dialled: str) -> Decision:
        return await self.policy._run(self._decide, dialled)

    def _decide(self, dialled: str) -> Decision:
        from app.accounts.models import Account
        from app.extensions import db
        from app.routing.local import endpoints_of_did
        from tenants.scope import unscoped

        with unscoped():
            account_id, endpoints = endpoints_of_did(dialled)
            if not endpoints:
                log.info("inbound call to %s refused (unassigned_number)", dialled)
                return Decision(False, "unassigned_number", destination=dialled)
            number = db.session.execute(select(Account.account_number).where(Account.id == account_id)).scalar_one()
        # one Dial that rings every endpoint at once (PJSIP/a&PJSIP/b)
        return Decision(True, "", number, dialled, 0, legs=(LocalLeg(*endpoints),))
