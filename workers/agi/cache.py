"""The FastAGI decision's fast path: what changes rarely is cached per process, what is live is
read fresh, in one SQL statement and one Redis round trip per decision.

Per decision (`FastPath.prepare`, in the policy's threads, then `live_counts` on the loop):
- ONE statement: the account row (status, expiry, balance, credit limit, channel and CPS
  limits: fresh every call), its extension (by endpoint), its reseller's call-charge places,
  this period's bundle usage, and two version counters (app/routing/cache_versions.py, kept by
  triggers): the account's (number and translation rules, extensions, DIDs, customer routes,
  plan, plan countries, rate sheet) and the routing tables' (groups, routes, route carriers,
  carriers, their buy sheets);
- ONE Redis script: the account's in-use count over the live watchers and, when the account
  has a CPS limit, the attempt added to its sliding window (workers.ami.counts' keys).
The cached parts (an account's `Profile`, the `RoutingSnapshot`, the rate-sheet prefix indexes
of the AMI policy) are kept while their version is unchanged (`fingerprint` below), so an edit committed by a
portal applies to the next call, whoever made it. A balance notice on "ringledger:balance"
(app/calls/live.py announce, after every status, balance or account edit) drops the account's
profile at once too, and a profile is reloaded at least every `ttl` seconds.

The checks and their order are `CallControl`'s reference path (decide.py `_identify`,
`DatabasePolicy.admit`, `_limit_and_route`); tests/agi/test_agi_cache.py compares both.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

from sqlalchemy import func, null, select

from workers.ami.balance import BALANCE_CHANNEL
from workers.ami.db_policy import _STATUS_CAUSES, INTERNAL, bundle_period_start, expiry_of
from workers.ami.cdr_writer import utc_naive
from workers.ami.policy import (ACCOUNT_EXPIRED, COUNTRY_CLOSED, NO_CREDIT, NO_RATE, UNKNOWN_ACCOUNT,
                                Admission)

log = logging.getLogger("ringledger.agi.cache")

# One round trip: the account's in-use count over the live watchers (InUseCounts._total) and,
# with a CPS limit, one attempt added to the sliding window (InUseCounts.attempts_in_window).
_COUNTS_SCRIPT = """
local prefix, account = ARGV[1], ARGV[2]
local total = 0
for _, s in ipairs(redis.call('SMEMBERS', prefix .. ':servers')) do
  if redis.call('EXISTS', prefix .. ':' .. s .. ':alive') == 1 then
    local v = redis.call('HGET', prefix .. ':' .. s .. ':account', account)
    if v then total = total + tonumber(v) end
  end
end
local attempts = 0
if ARGV[3] == '1' then
  local key = prefix .. ':cps:' .. account
  local now, window = tonumber(ARGV[4]), tonumber(ARGV[6])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('ZADD', key, now, ARGV[5])
  attempts = redis.call('ZCARD', key)
  redis.call('EXPIRE', key, math.floor(window) + 2)
end
return {total, attempts}
"""


class LiveAccount(NamedTuple):
    """The account's columns a decision reads fresh, the statement's first columns (the fields
    of `Account` that expiry_of, the checks and the profile loaders use)."""
    id: int
    tenant_id: int
    account_number: str
    status: str
    play_insufficient_credit: bool
    country: str | None
    currency: str
    available_credit: Decimal          # Account.available_credit, its SQL form
    max_channels: int | None
    cps_limit: int | None
    expiry_mode: str | None
    expiry_date: date | None
    expiry_days: int | None
    first_used_at: datetime | None
    created_at: datetime | None
    timezone: str | None


_LIVE = len(LiveAccount._fields)


def live_statements():
    """The per-decision statement by endpoint and by account number (bind parameters `period`
    and `endpoint` or `number`): LiveAccount's columns, then the extension id, the reseller's
    call-charge places, this period's bundle usage (JSON) and the two versions."""
    from sqlalchemy import bindparam

    from app.accounts.models import Account
    from app.billing.models import BundleUsage
    from app.routing.cache_versions import ACCOUNT_VERSION, ROUTING_VERSION
    from provisioning.models import Extension
    from tenants.models import Tenant

    columns = [getattr(Account, name) for name in LiveAccount._fields]
    places = select(Tenant.call_charge_places).where(Tenant.id == Account.tenant_id).scalar_subquery()
    bundle = (select(func.json_object_agg(BundleUsage.country, BundleUsage.seconds_used))
              .where(BundleUsage.account_id == Account.id,
                     BundleUsage.period_start == bindparam("period")).scalar_subquery())
    extra = (places, bundle, ACCOUNT_VERSION, ROUTING_VERSION)
    by_number = select(*columns, null(), *extra).where(Account.account_number == bindparam("number"))
    by_endpoint = (select(*columns, Extension.id, *extra).join(Extension, Extension.account_id == Account.id)
                   .where(Extension.sip_username == bindparam("endpoint"), Extension.active.is_(True)))
    return by_endpoint, by_number


class Miss(Exception):
    """The cached parts cannot finish this decision without the database (a profile or the
    routing snapshot to reload, a sheet index never built, an unrated destination to look up
    among the reseller's extensions): decide it again in a policy thread."""


@dataclass(frozen=True, slots=True)
class Translation:
    """app.routing.models.TranslationRule's fields, detached from any session."""
    match: str
    strip_digits: int
    add_prefix: str
    national_to_e164: bool


@dataclass
class Profile:
    """An account's slow-changing side, valid while its fingerprint is."""
    fingerprint: str
    day: date
    loaded: float
    translation: list
    rules: list                       # (kind, prefix)
    siblings: dict                    # short number -> SIP endpoint (active extensions)
    extension_numbers: dict           # extension id -> number
    dids: list                        # (number, extension id), ordered by number
    approved: set                     # caller-ID prefixes the reseller approved
    customer_routes: dict             # extension id or None -> route group id
    terms: object                     # workers.ami.db_policy.Terms
    sheet: tuple | None               # (rate sheet id, (version, day)) of terms.index


@dataclass
class Prepared:
    """A decision up to the Redis checks: what `CallControl.decide` finishes with the counts."""
    number: str
    play: bool
    destination: str
    max_channels: int
    cps_limit: int
    late: Admission | None            # refusal after the Redis checks (no rate, country, credit)
    credit: Decimal
    tariff: object                    # None / INTERNAL: no limit
    bundle: int                       # free seconds left in the tariff's country
    short_call: object
    currency: str
    places: int
    legs: list | None                 # None: routing not configured (or an internal call)
    caller_id: str
    first: int | None = None          # max_call_seconds on the whole credit and bundle (the first-block check)


class FastPath:
    def __init__(self, policy, *, ttl: float = 60.0):
        self.policy = policy
        self.ttl = ttl
        self._profiles: dict[str, Profile] = {}       # account number -> Profile
        self._routing: tuple[str, object, dict] | None = None   # (fingerprint, snapshot, buy sheet versions)
        self._lock = threading.Lock()
        self.reloads = {"profile": 0, "routing": 0}   # for tests and logs
        self.misses: dict[str, int] = {}               # decisions the loop handed to a thread, by cause
        self.notices = 0
        self._stopped = threading.Event()
        self._statements = None

    # ---- invalidation ------------------------------------------------------------------------
    def forget(self, account_number: str) -> None:
        """A balance/account notice: the next call of the account reloads its profile."""
        self._profiles.pop(account_number, None)
        self.notices += 1

    def listen(self, redis_url: str, channel: str = BALANCE_CHANNEL) -> None:
        """Follow the portals' after-commit notices in a daemon thread (its own connection,
        polled every 0.5 s so `close` ends it); resubscribes after errors."""
        self._thread = threading.Thread(target=self._listen, args=(redis_url, channel), daemon=True,
                                        name="agi-notices")
        self._thread.start()

    def _listen(self, redis_url: str, channel: str) -> None:
        import redis

        while not self._stopped.is_set():
            client = redis.Redis.from_url(redis_url)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                self._profiles.clear()           # notices sent while away are lost: start afresh
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message.get("type") == "message" and message.get("data"):
                        data = message["data"]
                        self.forget(data.decode() if isinstance(data, bytes) else str(data))
                pubsub.close()
            except (redis.RedisError, OSError) as exc:
                log.warning("account notices lost (%s); resubscribing in 1 s", exc)
                self._stopped.wait(1.0)
            finally:
                client.close()

    def close(self) -> None:
        self._stopped.set()

    # ---- the statement ---------------------------------------------------------------------------
    def _live_row(self, endpoint: str, account_number: str | None, today: date):
        """The statement through the app's session (a policy thread)."""
        from app.extensions import db

        if self._statements is None:
            self._statements = live_statements()
        by_endpoint, by_number = self._statements
        params = {"period": bundle_period_start(today)}
        if account_number is not None:
            params["number"] = account_number
            return db.session.execute(by_number, params).first()
        params["endpoint"] = endpoint
        return db.session.execute(by_endpoint, params).first()

    # ---- cached parts --------------------------------------------------------------------------
    def _profile(self, account, fingerprint: str, today: date, cached_only: bool = False) -> Profile:
        found = self._profiles.get(account.account_number)
        if (found is not None and found.fingerprint == fingerprint and found.day == today
                and found.terms.currency == account.currency and time.monotonic() - found.loaded <= self.ttl):
            self._follow_index(found)
            return found
        if cached_only:
            raise Miss("profile")
        profile = self._load_profile(account, fingerprint, today)
        self._profiles[account.account_number] = profile
        self.reloads["profile"] += 1
        return profile

    def _load_profile(self, account, fingerprint: str, today: date) -> Profile:
        from app.billing.models import ServicePlan
        from app.extensions import db
        from app.numbers.models import Number
        from app.rating.models import RateSheet
        from app.routing.rules import rules_of
        from app.routing.snapshot import customer_routes_of
        from app.routing.translation import rules_of as translation_rules
        from provisioning.models import Extension

        translation = [Translation(r.match, r.strip_digits, r.add_prefix, r.national_to_e164)
                       for r in translation_rules(account.id)]
        rules = rules_of(account.id)
        extensions = db.session.execute(select(Extension.id, Extension.number, Extension.sip_username, Extension.active)
                                        .where(Extension.account_id == account.id).order_by(Extension.id)).all()
        dids = [tuple(r) for r in db.session.execute(select(Number.number, Number.extension_id).where(
            Number.account_id == account.id, Number.status == "assigned").order_by(Number.number))]
        sheet = db.session.execute(select(RateSheet.id, RateSheet.version)
                                   .join(ServicePlan, ServicePlan.rate_sheet_id == RateSheet.id)
                                   .where(ServicePlan.account_id == account.id)).first()
        terms = self.policy._load_terms(account)
        return Profile(
            fingerprint, today, time.monotonic(), translation, [(k, p) for k, p in rules if k != "callerid"],
            {number: sip for _, number, sip, active in extensions if active},
            {ext_id: number for ext_id, number, _, _ in extensions}, dids,
            {p for k, p in rules if k == "callerid"}, customer_routes_of(account.id), terms,
            (sheet[0], (sheet[1], terms.day)) if sheet is not None and terms.index is not None else None)

    def warm_up(self) -> int:
        """Load every active account's profile in bulk (a dozen statements for all of them) and
        the routing snapshot with its buy sheets' indexes; in an app context. Returns the count."""
        from app.accounts.models import Account
        from app.billing.models import PlanCountry, ServicePlan
        from app.extensions import db
        from app.numbers.models import Number
        from app.rating.cost import ShortCallCharge
        from app.rating.models import RateSheet
        from app.routing.models import CustomerRoute, NumberRule
        from app.routing.models import TranslationRule
        from app.routing.cache_versions import ACCOUNT_VERSION, ROUTING_VERSION
        from provisioning.models import Extension
        from tenants.scope import unscoped

        from workers.ami.db_policy import Terms

        today = datetime.now(timezone.utc).date()
        with unscoped():
            snapshot, versions = self._routing_snapshot(db.session.execute(select(ROUTING_VERSION)).scalar_one())
            for sheet_id, version in versions.items():
                self.policy._index_of(sheet_id, (version, today))
            rows = db.session.execute(select(Account, ACCOUNT_VERSION).where(Account.status == "active")).all()
            ids = [a.id for a, _ in rows]
            if not ids:
                return 0

            def by_account(stmt):
                out: dict[int, list] = {}
                for r in db.session.execute(stmt):
                    out.setdefault(r[0], []).append(tuple(r[1:]))
                return out
            translation = by_account(select(TranslationRule.account_id, TranslationRule.match,
                                            TranslationRule.strip_digits, TranslationRule.add_prefix,
                                            TranslationRule.national_to_e164).where(TranslationRule.account_id.in_(ids))
                                     .order_by(TranslationRule.position, TranslationRule.id))
            rules = by_account(select(NumberRule.account_id, NumberRule.kind, NumberRule.prefix)
                               .where(NumberRule.account_id.in_(ids)))
            extensions = by_account(select(Extension.account_id, Extension.id, Extension.number, Extension.sip_username,
                                           Extension.active).where(Extension.account_id.in_(ids)).order_by(Extension.id))
            dids = by_account(select(Number.account_id, Number.number, Number.extension_id).where(
                Number.account_id.in_(ids), Number.status == "assigned").order_by(Number.number))
            routes = by_account(select(CustomerRoute.account_id, CustomerRoute.extension_id, CustomerRoute.group_id)
                                .where(CustomerRoute.account_id.in_(ids)).order_by(CustomerRoute.id))
            plans = {r[0]: r[1:] for r in db.session.execute(
                select(ServicePlan.account_id, ServicePlan.id, RateSheet.id, RateSheet.version, RateSheet.currency,
                       RateSheet.short_call_seconds, RateSheet.short_call_charge)
                .outerjoin(RateSheet, RateSheet.id == ServicePlan.rate_sheet_id).where(ServicePlan.account_id.in_(ids)))}
            countries = by_account(select(ServicePlan.account_id, PlanCountry.country, PlanCountry.minutes)
                                   .join(ServicePlan, ServicePlan.id == PlanCountry.plan_id)
                                   .where(ServicePlan.account_id.in_(ids)))
        for account, fingerprint in rows:
            plan_id = sheet_id = index = short = None
            plan = plans.get(account.id)
            if plan is not None:
                plan_id, sheet_id, version, currency, short_seconds, short_charge = plan
                if sheet_id is not None and currency != account.currency:
                    sheet_id = None     # _load_terms: a sheet in another currency rates nothing
                if sheet_id is not None:
                    index = self.policy._index_of(sheet_id, (version, today))
                    if short_seconds:
                        short = ShortCallCharge(short_seconds, short_charge)
            terms = Terms(account.id, account.tenant_id, account.account_number, account.currency, plan_id, index,
                          short, {c: m for c, m in countries.get(account.id, [])} if plan is not None else {},
                          today, time.monotonic())
            own_rules = rules.get(account.id, [])
            exts = extensions.get(account.id, [])
            self._profiles.setdefault(account.account_number, Profile(
                fingerprint, today, time.monotonic(), [Translation(*t) for t in translation.get(account.id, [])],
                [(k, p) for k, p in own_rules if k != "callerid"],
                {number: sip for _, number, sip, active in exts if active}, {e: number for e, number, _, _ in exts},
                dids.get(account.id, []), {p for k, p in own_rules if k == "callerid"},
                {ext: group for ext, group in routes.get(account.id, [])}, terms,
                (sheet_id, (version, today)) if index is not None else None))
        log.info("call control: %d account profiles and the routing snapshot loaded", len(rows))
        return len(rows)

    def _follow_index(self, profile: Profile) -> None:
        """A new sheet version's index is built in the background while the previous one
        answers: once it is ready, the profile's terms switch to it."""
        if profile.sheet is None:
            return
        sheet_id, key = profile.sheet
        latest = self.policy._indexes.get(sheet_id)
        if latest is not None and latest[0] == key and latest[1] is not profile.terms.index:
            profile.terms.index = latest[1]
            profile.terms.tariffs.clear()

    def _routing_snapshot(self, fingerprint: str, cached_only: bool = False):
        from app.extensions import db
        from app.rating.models import RateSheet
        from app.routing.snapshot import RoutingSnapshot

        current = self._routing
        if current is not None and current[0] == fingerprint:
            return current[1], current[2]
        if cached_only:
            raise Miss("routing")
        snapshot = RoutingSnapshot.load()
        sheets = snapshot.buy_sheets()
        versions = dict(db.session.execute(select(RateSheet.id, RateSheet.version).where(RateSheet.id.in_(sheets))
                                           ).all()) if sheets else {}
        self._routing = (fingerprint, snapshot, versions)
        self.reloads["routing"] += 1
        return snapshot, versions

    # ---- the decision up to the Redis checks ----------------------------------------------------------
    def prepare(self, endpoint: str, destination: str, account_number: str | None, now: float,
                presented: str):
        """The whole decision up to the Redis checks in a policy thread (app context): the
        statement through the session, then `decide_row`, reloading whatever is stale."""
        from tenants.scope import unscoped

        today = datetime.now(timezone.utc).date()
        with unscoped():
            row = self._live_row(endpoint, account_number, today)
            return self.decide_row(row, endpoint, destination, now, presented, today)

    def decide_row(self, row, endpoint: str, destination: str, now: float, presented: str, today: date,
                   *, cached_only: bool = False):
        """The decision up to the Redis checks on the statement's row (None: no such account).
        `cached_only` (on the event loop): never touch the database, raise `Miss` instead."""
        from app.money import call_charge_places
        from app.rating.duration import max_call_seconds
        from app.routing.rules import pick_caller_id, rule_refusal
        from app.routing.translation import translate

        from .decide import Decision, LocalLeg

        if row is None:
            log.info("call from unknown endpoint %r refused (%s)", endpoint, UNKNOWN_ACCOUNT)
            return Decision(False, UNKNOWN_ACCOUNT)
        account = LiveAccount._make(row[:_LIVE])
        extension_id, places_setting, bundle_used, account_fp, routing_fp = row[_LIVE:]
        profile = self._profile(account, account_fp, today, cached_only)
        number, play = account.account_number, bool(account.play_insufficient_credit)
        # _identify: a sibling extension, the translation, the allow/deny rules
        sibling = profile.siblings.get(destination) if destination else None
        if sibling is not None:
            return Decision(True, "", number, destination, 0, legs=(LocalLeg(sibling),))
        destination = translate(profile.translation, destination, account.country or "")
        refusal = rule_refusal(profile.rules, destination) if destination else None
        if refusal:
            log.info("account %s refused (%s): %s matches its number rules", number, refusal, destination)
            return Decision(False, refusal, number, destination)
        if not destination:
            return Decision(False, "no_destination", number)
        # DatabasePolicy._admit_db: status, expiry, then rate, country and credit
        if account.status != "active":
            cause = _STATUS_CAUSES.get(account.status, "account_disabled")
            log.info("account %s refused (%s): the account is %s", number, cause, account.status)
            return Decision(False, cause, number, destination, play_no_credit=play and cause == NO_CREDIT)
        expires = expiry_of(account, utc_naive(now))
        if expires is not None and utc_naive(now) >= expires:
            log.info("account %s refused (%s): expired %s UTC (%s)", number, ACCOUNT_EXPIRED,
                     expires.isoformat(timespec="seconds"), account.expiry_mode)
            return Decision(False, ACCOUNT_EXPIRED, number, destination)
        terms = profile.terms
        tariff = terms.tariff(destination)
        if tariff is None:
            if cached_only:
                raise Miss("internal")
            if self.policy._is_internal(terms, destination):
                terms.tariffs[destination] = tariff = INTERNAL
        places = call_charge_places(places_setting, account.currency)
        credit = account.available_credit
        late, bundle, first = None, 0, None
        if tariff is None:
            why = "the account has no rate sheet" if terms.index is None else "no rate on the account's rate sheet"
            log.info("account %s refused (%s): %s for %s", number, NO_RATE, why, destination)
            late = Admission(False, NO_RATE)
        elif tariff is not INTERNAL:
            minutes = terms.countries.get(tariff.country)
            if tariff.country not in terms.countries:
                log.info("account %s refused (%s): %s (prefix %s) is not opened by its plan", number,
                         COUNTRY_CLOSED, tariff.country or "a non-geographic destination", tariff.prefix)
                late = Admission(False, COUNTRY_CLOSED)
            else:
                if minutes:
                    bundle = max(60 * minutes - int((bundle_used or {}).get(tariff.country, 0)), 0)
                first = max_call_seconds(credit, tariff, account.currency, bundle_seconds=bundle,
                                         short_call=terms.short_call, places=places)
                if first == 0:
                    log.info("account %s refused (%s): credit %s %s does not buy the first block to %s "
                             "(%s/min, %d s, bundle %d s left)", number, NO_CREDIT, credit, account.currency,
                             destination, tariff.rate_per_minute, tariff.first_block, bundle)
                    late = Admission(False, NO_CREDIT)
        # _limit_and_route: caller ID and legs (the seconds wait for the live count)
        caller_id = pick_caller_id(presented, profile.dids, profile.approved, extension_id,
                                   lambda: profile.extension_numbers[extension_id])
        legs = None
        if late is None and tariff is not None and tariff is not INTERNAL:
            snapshot, versions = self._routing_snapshot(routing_fp, cached_only)
            if snapshot.configured:
                group = snapshot.group_for(profile.customer_routes, extension_id)
                legs = [] if group is None else snapshot.legs_for(
                    group, destination,
                    lambda sheet_id, d: self._buy_rate(versions, sheet_id, d, today, cached_only))
        return Prepared(number, play, destination, account.max_channels or 0, account.cps_limit or 0, late,
                        credit, tariff, bundle, terms.short_call, account.currency, places, legs, caller_id, first)

    def _buy_rate(self, versions: dict, sheet_id: int, destination: str, today: date, cached_only: bool = False):
        version = versions.get(sheet_id)
        if version is None:
            return None
        if cached_only and sheet_id not in self.policy._indexes:
            raise Miss("index")        # never built: _index_of would build it on the spot
        index = self.policy._index_of(sheet_id, (version, today))
        tariff = index.lookup(destination) if index is not None else None
        return None if tariff is None else tariff.rate_per_minute

    # ---- after the Redis checks --------------------------------------------------------------------
    @staticmethod
    def seconds(p: Prepared, live: int) -> int | None:
        """_limit_and_route's seconds: the call's equal share of the credit and of the bundle."""
        from app.rating.duration import max_call_seconds

        if p.tariff is None or p.tariff is INTERNAL:
            return None
        share = (p.credit / live).quantize(Decimal("0.000001"), ROUND_DOWN)
        if live == 1 and p.first is not None and share == p.credit:
            return p.first          # the same arguments as the first-block check: its answer
        return max_call_seconds(share, p.tariff, p.currency, bundle_seconds=p.bundle // live,
                                short_call=p.short_call, places=p.places)


class LiveCounts:
    """The in-use count (and CPS attempt) of an account in one Redis round trip: on the lean
    RESP client of workers/agi/resp.py when the counts' client is a plain TCP or Unix-socket
    one, else on redis-py's script object."""

    def __init__(self, counts):
        from .resp import script_runner

        self.counts = counts
        self.runner = script_runner(counts.redis, _COUNTS_SCRIPT)
        self._script = counts.redis.register_script(_COUNTS_SCRIPT) if self.runner is None else None
        self._ids = 0

    async def read(self, account: str, now: float, *, cps: bool, window: float = 1.0) -> tuple[int, int]:
        self._ids += 1
        args = [self.counts.prefix, account, "1" if cps else "0", repr(now), f"{now:.6f}/{os.getpid()}/agi{self._ids}",
                repr(window)]
        if self.runner is not None:
            total, attempts = await self.runner(*args)
        else:
            total, attempts = await self._script(args=args)
        return int(total), int(attempts)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
