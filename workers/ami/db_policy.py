"""The database-backed CallPolicy: accounts, plans, rate sheets, bundles and the ledger.

Every method that touches the database hands its work to a small thread pool (the event loop
never waits on SQL); each piece of work runs in its own app context, looks the account up
platform-wide (`unscoped()`, by account number), then writes inside
`tenant_scope(account.tenant_id)` and commits once.

- admit: unknown account, status (suspended, disabled, closed), expiry (date, days after first
  use, days after creation, in the account's time zone), calls per second (a sliding window in
  Redis shared by every watcher), max channels (the shared in-use count, which includes this call), the
  destination's rate and country (the account's rate sheet, longest prefix; the plan's
  countries) and credit for the first block (bundle seconds count). Each refusal is logged
  with its detail.
- deadlines: prepaid credit = balance, postpaid = balance + credit limit, shared by all the
  account's answered calls (`app.rating.duration.shared_deadlines`), bundle seconds first.
  Tariffs, plan and countries are cached per account (`terms_ttl`), so a recomputation is two
  small queries (balance, bundle usage) plus arithmetic.
- first_use: Account.first_used_at, once.
- record_cdr: queued for the CDR writer (`workers.ami.cdr_writer`), which stores and rates the
  CDRs that arrived meanwhile in one transaction (`app.rating.cdr.store_rated_calls`: one Call
  row per (server, uniqueid), ledger debit keyed `call:<call id>`).
- registrations / link_status: Extension registration columns, AsteriskServer link status.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Sequence

from sqlalchemy import or_, select, update

from app.accounts.expiry import expiry_of

from .cdr_writer import CdrWriter, utc_naive, write_cdrs
from .policy import (ACCOUNT_CLOSED, ACCOUNT_DISABLED, ACCOUNT_EXPIRED, ACCOUNT_SUSPENDED, ADMITTED,
                     CHANNEL_LIMIT, COUNTRY_CLOSED, CPS_LIMIT, NO_CREDIT, NO_RATE, UNKNOWN_ACCOUNT,
                     Admission, LiveCall)

log = logging.getLogger("ringledger.ami.policy")

_STATUS_CAUSES = {"suspended": ACCOUNT_SUSPENDED, "disabled": ACCOUNT_DISABLED, "closed": ACCOUNT_CLOSED}
INTERNAL = "internal"          # tariff cache marker: a call to an extension of the same reseller


def bundle_period_start(day: date) -> date:
    """The billing period bundle minutes belong to (the CDR rater's rule: the calendar month)."""
    from app.rating.cdr import bundle_period_start as period

    return period(day)


@dataclass
class Terms:
    """An account's slow-changing terms, cached between recomputations."""
    account_id: int
    tenant_id: int
    number: str
    currency: str
    plan_id: int | None
    index: object | None                    # app.rating.index.PrefixIndex, None: no rate sheet
    short_call: object | None               # ShortCallCharge
    countries: dict[str, int]               # opened country -> free minutes per period
    day: date                               # the rates in effect that day
    loaded: float                           # time.monotonic()
    tariffs: dict[str, object] = field(default_factory=dict)   # destination -> Tariff | INTERNAL | None

    def tariff(self, destination: str):
        hit = self.tariffs.get(destination, self)
        if hit is self:
            hit = self.index.lookup(destination) if self.index is not None and destination else None
            if len(self.tariffs) > 1000:
                self.tariffs.clear()
            self.tariffs[destination] = hit
        return hit


# A Hangup sent now lands within this many seconds (cutoffs: p99 under 25 ms; after a
# reconnect, 250 ms): a call this close to its next second is counted as billed for it.
HANGUP_MARGIN = 0.25


class DatabasePolicy:
    def __init__(self, app, *, threads: int = 8, terms_ttl: float = 60.0, counts=None, cdr_batch: int = 50_000,
                 hangup_margin: float = HANGUP_MARGIN):
        self.app = app
        self.hangup_margin = hangup_margin
        self.terms_ttl = terms_ttl
        self.counts = counts                      # InUseCounts; the watcher's, via attach()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ami-db")
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ami-index")
        self._terms: dict[str, Terms] = {}
        self._indexes: dict[int, tuple[tuple, object]] = {}   # sheet id -> (key, latest PrefixIndex)
        self._building: set[tuple] = set()
        self._lock = threading.Lock()
        self._cdrs = CdrWriter(self._write_cdrs, max_batch=cdr_batch)
        self._cut_reported: set[str] = set()   # accounts whose calls are being cut for their status

    # ---- plumbing -------------------------------------------------------------------------
    def attach(self, watcher) -> None:
        if self.counts is None:
            self.counts = watcher.counts
        self.warm_up()

    def close(self, wait: bool = True) -> None:
        """Drop queued work; with `wait`, let the database work under way finish (a thread
        still in a transaction after its watcher stopped would hold its table locks)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._cdrs.close(wait=wait)
        self._builder.shutdown(wait=wait, cancel_futures=True)

    def warm_up(self, *, wait: bool = False) -> None:
        """Build the prefix index of every rate sheet an active account's plan uses, and of its
        reseller's buy sheet (the CDR writer prices both), in the background unless `wait`:
        a 60,000-prefix sheet takes a second or two, not for a call's admission or a CDR batch."""
        if wait:
            self._in_app(self._warm_up_db, ())
        else:
            self._builder.submit(self._in_app, self._warm_up_db, ())

    def _warm_up_db(self) -> None:
        from app.accounts.models import Account
        from app.billing.models import ServicePlan
        from app.extensions import db
        from app.rating.models import RateSheet
        from tenants.models import Tenant
        from tenants.scope import unscoped

        day = datetime.now(timezone.utc).date()
        active = Account.status == "active"
        with unscoped():
            sheets = db.session.execute(
                select(RateSheet.id, RateSheet.version).where(or_(
                    RateSheet.id.in_(select(ServicePlan.rate_sheet_id)
                                     .join(Account, Account.id == ServicePlan.account_id).where(active)),
                    RateSheet.id.in_(select(Tenant.buy_rate_sheet_id)
                                     .where(Tenant.id.in_(select(Account.tenant_id).where(active))))))).all()
        for sheet_id, version in sheets:
            self._build_index(sheet_id, (version, day))
        if sheets:
            log.info("prefix indexes of %d rate sheet(s) ready", len(sheets))

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._in_app, fn, args)

    def _in_app(self, fn, args):
        from app.extensions import db

        with self.app.app_context():
            try:
                return fn(*args)
            finally:
                db.session.remove()

    # ---- terms (cached) -------------------------------------------------------------------
    def _account(self, number: str):
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.scope import unscoped

        with unscoped():
            return db.session.execute(
                select(Account).where(Account.account_number == number)).scalar_one_or_none()

    def _credit_and_billed(self, account, ended: list[LiveCall]):
        """(what calls may spend now, {(server, uniqueid) of the ended calls whose record is
        rated}), read in one statement: one snapshot for both."""
        from sqlalchemy import exists

        from app.accounts.models import Account
        from app.calls.models import Call
        from app.extensions import db
        from tenants.scope import unscoped

        flags = [exists().where(Call.server == c.server, Call.uniqueid == c.uniqueid, Call.rated_at.is_not(None))
                 for c in ended]
        with unscoped():
            row = db.session.execute(select(Account.balance, Account.credit_limit, *flags)
                                     .where(Account.id == account.id)).one()
        credit = row[0] + row[1] if account.billing_type == "postpaid" else row[0]
        return credit, {(c.server, c.uniqueid) for c, flag in zip(ended, row[2:]) if flag}

    def charge_places(self, account) -> int:
        """Decimals the account's calls are rated at (its reseller's call charge precision, read
        fresh: the deadlines must round as the CDR writer will, or a prepaid balance could end
        a fraction of a cent below zero)."""
        from app.extensions import db
        from app.money import call_charge_places
        from tenants.models import Tenant
        from tenants.scope import unscoped

        with unscoped():
            setting = db.session.execute(
                select(Tenant.call_charge_places).where(Tenant.id == account.tenant_id)).scalar_one_or_none()
        return call_charge_places(setting, account.currency)

    def _load_terms(self, account) -> Terms:
        from app.billing.models import PlanCountry, ServicePlan
        from app.extensions import db
        from app.rating.cost import ShortCallCharge
        from app.rating.models import RateSheet
        from tenants.scope import unscoped

        today = datetime.now(timezone.utc).date()
        index = short = None
        countries: dict[str, int] = {}
        with unscoped():
            plan = db.session.execute(
                select(ServicePlan).where(ServicePlan.account_id == account.id)).scalar_one_or_none()
            if plan is not None:
                countries = dict(db.session.execute(
                    select(PlanCountry.country, PlanCountry.minutes).where(PlanCountry.plan_id == plan.id)).all())
                sheet = None
                if plan.rate_sheet_id is not None:
                    sheet = db.session.execute(
                        select(RateSheet).where(RateSheet.id == plan.rate_sheet_id)).scalar_one_or_none()
                if sheet is not None and sheet.currency != account.currency:
                    # The rater charges nothing for such calls (rating_error): do not admit them.
                    log.warning("account %s: rate sheet %r is in %s, the account in %s: no rates",
                                account.account_number, sheet.name, sheet.currency, account.currency)
                    sheet = None
                if sheet is not None:
                    index = self._index_of(sheet.id, (sheet.version, today))
                    if sheet.short_call_seconds:
                        short = ShortCallCharge(sheet.short_call_seconds, sheet.short_call_charge)
        terms = Terms(account.id, account.tenant_id, account.account_number, account.currency,
                      plan.id if plan is not None else None, index, short, countries, today,
                      time.monotonic())
        self._terms[account.account_number] = terms
        return terms

    def _index_of(self, sheet_id: int, key: tuple):
        """The sheet's prefix index for (version, day). A newer version (a rate edit) or a new
        day is built in the background while the previous index keeps answering for those
        seconds; only a sheet never seen before is built on the spot."""
        with self._lock:
            latest = self._indexes.get(sheet_id)
            if latest is not None and latest[0] == key:
                return latest[1]
            if latest is not None:
                if (sheet_id, key) not in self._building:
                    self._building.add((sheet_id, key))
                    self._builder.submit(self._in_app, self._build_index, (sheet_id, key))
                return latest[1]
        return self._build_index(sheet_id, key)

    def _build_index(self, sheet_id: int, key: tuple):
        from app.rating.index import get_index

        day = key[1]
        try:
            index = get_index(sheet_id, key, lambda: _tariffs_in_effect(sheet_id, day))
        finally:
            with self._lock:
                self._building.discard((sheet_id, key))
        with self._lock:
            latest = self._indexes.get(sheet_id)
            if latest is None or latest[0] < key:
                self._indexes[sheet_id] = (key, index)
        return index

    def _terms_of(self, account) -> Terms:
        terms = self._terms.get(account.account_number)
        if (terms is None or time.monotonic() - terms.loaded > self.terms_ttl
                or terms.day != datetime.now(timezone.utc).date()):
            terms = self._load_terms(account)
        return terms

    def _is_internal(self, terms: Terms, destination: str) -> bool:
        from app.extensions import db
        from provisioning.models import Extension
        from tenants.scope import unscoped

        with unscoped():
            return db.session.execute(
                select(Extension.id).where(Extension.tenant_id == terms.tenant_id, Extension.active.is_(True),
                                           (Extension.number == destination)
                                           | (Extension.sip_username == destination)).limit(1)
            ).first() is not None

    def _bundle_left(self, terms: Terms, today: date) -> dict[str, int]:
        """Free seconds left this period per opened country with minutes."""
        from app.billing.models import BundleUsage
        from app.extensions import db
        from tenants.scope import unscoped

        with_minutes = {c: m for c, m in terms.countries.items() if m > 0}
        if not with_minutes:
            return {}
        with unscoped():
            used = dict(db.session.execute(
                select(BundleUsage.country, BundleUsage.seconds_used).where(
                    BundleUsage.account_id == terms.account_id,
                    BundleUsage.period_start == bundle_period_start(today),
                    BundleUsage.country.in_(list(with_minutes)))).all())
        return {c: max(60 * m - int(used.get(c, 0)), 0) for c, m in with_minutes.items()}

    # ---- admit ----------------------------------------------------------------------------
    async def admit(self, account_number: str, destination: str, now: float) -> Admission:
        early, late, terms_limits = await self._run(self._admit_db, account_number, destination, now)
        if early is not None:
            return early
        max_channels, cps_limit = terms_limits
        if cps_limit and self.counts is not None:
            attempts = await self.counts.attempts_in_window(account_number, now)
            if attempts > cps_limit:
                log.info("account %s refused (%s): %d call attempts within 1 s, limit %d",
                         account_number, CPS_LIMIT, attempts, cps_limit)
                return Admission(False, CPS_LIMIT)
        if max_channels and self.counts is not None:
            in_use = await self.counts.account(account_number)
            if in_use > max_channels:   # the count includes this call
                log.info("account %s refused (%s): this call would be number %d, limit %d",
                         account_number, CHANNEL_LIMIT, in_use, max_channels)
                return Admission(False, CHANNEL_LIMIT)
        return late if late is not None else ADMITTED

    def _admit_db(self, number: str, destination: str, now: float):
        """(refusal before the Redis checks, refusal after them, (max channels, cps limit))."""
        from app.rating.duration import max_call_seconds

        account = self._account(number)
        if account is None:
            log.info("account %s refused (%s): no such account", number, UNKNOWN_ACCOUNT)
            return Admission(False, UNKNOWN_ACCOUNT), None, (0, 0)
        if account.status != "active":
            cause = _STATUS_CAUSES.get(account.status, ACCOUNT_DISABLED)
            log.info("account %s refused (%s): the account is %s", number, cause, account.status)
            return Admission(False, cause), None, (0, 0)
        expires = expiry_of(account, utc_naive(now))
        if expires is not None and utc_naive(now) >= expires:
            log.info("account %s refused (%s): expired %s UTC (%s)", number, ACCOUNT_EXPIRED,
                     expires.isoformat(timespec="seconds"), account.expiry_mode)
            return Admission(False, ACCOUNT_EXPIRED), None, (0, 0)
        limits = (account.max_channels or 0, account.cps_limit or 0)
        terms = self._load_terms(account)            # fresh at every admission
        if not destination:
            log.info("account %s: call admitted before its destination is known", number)
            return None, None, limits
        tariff = terms.tariff(destination)
        if tariff is None:
            if self._is_internal(terms, destination):
                terms.tariffs[destination] = INTERNAL
                return None, None, limits
            why = "the account has no rate sheet" if terms.index is None else "no rate on the account's rate sheet"
            log.info("account %s refused (%s): %s for %s", number, NO_RATE, why, destination)
            return None, Admission(False, NO_RATE), limits
        if tariff is INTERNAL:
            return None, None, limits
        if tariff.country not in terms.countries:
            log.info("account %s refused (%s): %s (prefix %s) is not opened by its plan", number,
                     COUNTRY_CLOSED, tariff.country or "a non-geographic destination", tariff.prefix)
            return None, Admission(False, COUNTRY_CLOSED), limits
        bundle = self._bundle_left(terms, terms.day).get(tariff.country, 0)
        credit = account.available_credit
        if max_call_seconds(credit, tariff, account.currency, bundle_seconds=bundle,
                            short_call=terms.short_call, places=self.charge_places(account)) == 0:
            log.info("account %s refused (%s): credit %s %s does not buy the first block to %s "
                     "(%s/min, %d s, bundle %d s left)", number, NO_CREDIT, credit, account.currency,
                     destination, tariff.rate_per_minute, tariff.first_block, bundle)
            return None, Admission(False, NO_CREDIT), limits
        return None, None, limits

    # ---- deadlines ------------------------------------------------------------------------
    async def deadlines(self, account_number: str, live_calls: Sequence[LiveCall], now: float
                        ) -> dict[str, float | None]:
        if not any(c.answered is not None for c in live_calls):
            return {c.key: None for c in live_calls}
        return await self._run(self._deadlines_db, account_number, list(live_calls), now)

    def _deadlines_db(self, number: str, live_calls: list[LiveCall], now: float) -> dict[str, float | None]:
        from app.rating import duration
        from app.rating.bundles import share_bundle

        from app.money import ZERO
        from app.rating.cost import call_cost

        out: dict[str, float | None] = {c.key: None for c in live_calls if c.ended is None}
        account = self._account(number)
        if account is None:
            return out
        # Ended calls whose record is already rated are in the balance: counting them as unbilled
        # too would spend their cost twice and cut the others early. One statement reads the
        # balance and which records are in, so both come from the same snapshot.
        credit, billed = self._credit_and_billed(account, [c for c in live_calls if c.ended is not None])
        running = [c for c in live_calls if c.ended is None]
        expires = expiry_of(account, utc_naive(now))
        if account.status != "active" or (expires is not None and utc_naive(now) >= expires):
            self._cut_for_status(account, running, "expired" if account.status == "active" else account.status)
            return {c.key: now for c in running}   # every switch: the watcher follows them all
        self._cut_reported.discard(number)
        # An expiry during the call ends it then (seconds, UTC).
        expiry_cap = (None if expires is None
                      else expires.replace(tzinfo=timezone.utc).timestamp())
        terms = self._terms_of(account)
        places = self.charge_places(account)
        bundle_left = self._bundle_left(terms, terms.day)
        # Calls that ended but are not in the ledger yet: their cost is spent. Counted at full
        # price and out of the bundle as well, which can only shorten the others' deadlines.
        unbilled = ZERO
        for call in live_calls:
            if (call.server, call.uniqueid) in billed:
                continue
            tariff = terms.tariff(call.destination) if call.ended is not None and call.answered else None
            if tariff is None or tariff is INTERNAL:
                continue
            billsec = duration.elapsed_seconds(call.ended, call.answered, margin=0)
            unbilled += call_cost(min(billsec, duration.MAX_CALL_SECONDS), tariff, account.currency, terms.short_call,
                                  places=places)
            if tariff.country in bundle_left:
                bundle_left[tariff.country] = max(bundle_left[tariff.country] - billsec, 0)
        rated: list[tuple[LiveCall, object]] = []
        for call in sorted((c for c in live_calls if c.answered is not None and c.ended is None),
                           key=lambda c: c.answered):
            tariff = terms.tariff(call.destination)
            if tariff is INTERNAL or not call.destination:
                continue                      # internal, or not known yet: nothing to rate
            if tariff is None:
                if self._is_internal(terms, call.destination):
                    terms.tariffs[call.destination] = INTERNAL
                    continue
                log.warning("account %s: %s to %s has no rate: hanging it up", number, call.channel,
                            call.destination)
                out[call.key] = now
                continue
            if tariff.country not in terms.countries:   # destination learnt after admission
                log.warning("account %s: %s to %s (%s) is not opened by its plan: hanging it up", number,
                            call.channel, call.destination, tariff.country or "non-geographic")
                out[call.key] = now
                continue
            rated.append((call, tariff))
        if not rated:
            return out
        shares: dict[str, list[int]] = {}
        for country, left in bundle_left.items():
            n = sum(1 for _, t in rated if t.country == country)
            if n:
                shares[country] = share_bundle(left, n)
        engine_calls = []
        for call, tariff in rated:
            share = shares.get(tariff.country)
            engine_calls.append(duration.LiveCall(
                call_id=call.key, answered_at=call.answered,
                elapsed=duration.elapsed_seconds(now, call.answered, margin=self.hangup_margin), tariff=tariff,
                bundle_seconds=share.pop(0) if share else 0))
        log.debug("account %s: credit %s, unbilled %s (already billed: %s), calls %s", number,
                  credit, unbilled, sorted(billed), [(c.call_id, c.elapsed) for c in engine_calls])
        found = duration.shared_deadlines(credit - unbilled, engine_calls, account.currency,
                                          terms.short_call, places=places)
        answered = {c.key: c.answered for c, _ in rated}
        for d in found:
            out[d.call_id] = answered[d.call_id] + d.max_duration
        if expiry_cap is not None:
            out = {k: expiry_cap if v is None or v > expiry_cap else v for k, v in out.items()}
        return out

    def _cut_for_status(self, account, calls, why: str) -> None:
        """Say once in the account's history that its live calls are being hung up, and why."""
        from app import audit
        from app.extensions import db
        from tenants.scope import unscoped

        if account.account_number in self._cut_reported or not calls:
            return
        self._cut_reported.add(account.account_number)
        with unscoped():
            audit.record("account.calls_hung_up", account, reason=f"account {why}",
                         calls=[f"{c.server}: {c.channel}" for c in calls])
            db.session.commit()
        log.warning("account %s is %s: hanging up its %d live call(s)", account.account_number, why, len(calls))

    # ---- first use ------------------------------------------------------------------------
    async def first_use(self, account_number: str, when: float) -> None:
        await self._run(self._first_use_db, account_number, when)

    def _first_use_db(self, number: str, when: float) -> None:
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.scope import tenant_scope

        account = self._account(number)
        if account is None or account.first_used_at is not None:
            return
        with tenant_scope(account.tenant_id, descendants=False):
            db.session.execute(
                update(Account).where(Account.id == account.id, Account.first_used_at.is_(None))
                .values(first_used_at=utc_naive(when)).execution_options(synchronize_session=False))
            db.session.commit()
        self._terms.pop(number, None)

    # ---- CDRs -----------------------------------------------------------------------------
    async def record_cdr(self, record: dict) -> None:
        """Queued for the CDR writer; returns once its batch is committed (the balance moved)."""
        await asyncio.wrap_future(self._cdrs.submit(record))

    def _write_cdrs(self, records: list[dict]) -> int:
        return self._in_app(write_cdrs, (records,))

    # ---- registrations and link status -------------------------------------------------------
    async def registrations(self, batch) -> None:
        await self._run(self._registrations_db, list(batch))

    def _registrations_db(self, batch) -> int:
        from app.extensions import db
        from provisioning.models import Extension
        from tenants.scope import unscoped

        latest = {r.endpoint: r for r in batch}
        changed = 0
        with unscoped():   # endpoints of every reseller: one lookup, one commit
            for ext in db.session.execute(
                    select(Extension).where(Extension.sip_username.in_(list(latest)))).scalars():
                reg = latest[ext.sip_username]
                ext.registered = reg.registered
                if reg.contact:
                    ext.contact_address = reg.contact
                if reg.registered:
                    ext.last_seen_at = utc_naive(reg.at)
                changed += 1
            db.session.commit()
        return changed

    async def link_reconciled(self, server: str) -> dict:
        """After every (re)connection: bill the calls that ended while the link was away from
        the switch's own CDRs (app/calls/switch_cdrs.py); once, whoever else runs it."""
        return await self._run(self._switch_cdrs_db)

    def _switch_cdrs_db(self) -> dict:
        from app.calls.switch_cdrs import reconcile_switch_cdrs
        from app.extensions import db

        result = reconcile_switch_cdrs(grace=timedelta(0))
        db.session.commit()
        return result

    async def link_status(self, server: str, up: bool, error: str, when: float) -> None:
        await self._run(self._link_status_db, server, up, error, when)

    def _link_status_db(self, server: str, up: bool, error: str, when: float) -> None:
        from app.calls.servers import AsteriskServer
        from app.extensions import db

        values = ({"last_connected_at": utc_naive(when)} if up
                  else {"last_error": error[:255], "last_error_at": utc_naive(when)})
        db.session.execute(update(AsteriskServer).where(AsteriskServer.name == server).values(**values)
                           .execution_options(synchronize_session=False))
        db.session.commit()


def _tariffs_in_effect(sheet_id: int, day: date) -> list:
    """The sheet's rows in effect on `day` (the rating engine's loader, as the CDR rater uses:
    same get_index key, so the watcher and the rater share one index per sheet and day)."""
    from app.rating.cdr import tariffs_in_effect

    return tariffs_in_effect(sheet_id, day, all_tenants=True)


__all__ = ["DatabasePolicy", "Terms", "bundle_period_start", "expiry_of"]
