"""Rating finished calls (CDRs) into the ledger: the database side of the rating engine.

`rate_calls(call_ids)` runs in the caller's app context and tenant scope, flushes and never
commits. For each call not rated yet (others are skipped, so a re-run changes nothing):

    account -> service plan -> rate sheet -> prefix index of the rates in effect on the call's
    start date (UTC) -> internal call? -> tariff (no rate: rating_error) -> country opened by
    the plan? (no: rating_error) -> bundle seconds first, then the rate -> ledger debit
    `call:<call id>` -> the Call's result columns; plus the reseller's own buy price
    (`buy_cost`) from the sheet its parent assigned to it (Tenant.buy_rate_sheet_id).

Each call is rounded once, at its account's reseller's call charge precision
(Tenant.call_charge_places via money.call_charge_places; buy prices at the parent's), and its
ledger debit keeps those decimals (docs/rating.md, "Call charge precision").

Rules where the issue was silent (docs/rating-database.md):
- billsec is the duration; 0 s (unanswered, busy, failed) costs 0 and writes no ledger entry,
  and neither does any call that comes to 0 (inside the bundle, free rate, internal call);
- a call to one of the same reseller's extensions (number or SIP user) is internal: free
  (only destinations of at most 8 characters, or not all digits, are looked up);
- a call with a rating_error (no plan, no rate sheet, sheet and account in different
  currencies, no rate for the destination, country not opened) is marked rated, costs 0 and
  charges nothing: the AMI watcher should have refused it; reports show it as an error; once
  its cause is fixed the calls browser re-rates it (app/rating/rerate.py, same ledger key);
- bundle periods are calendar months (UTC) of the call's start, like the watcher's;
- buy_cost is the full call at the buy sheet (the reseller pays its parent for bundle
  minutes too); NULL without a buy sheet, with one in another currency than the account's,
  or without a matching prefix.

Calls are locked (FOR UPDATE SKIP LOCKED on PostgreSQL) so the watcher rating a call at once
and the periodic job never rate the same call twice; bundle counters are locked (SELECT … FOR
UPDATE, created first when missing) before they are read and moved by `seconds_used = seconds_used + :n`.
"""
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import NamedTuple

from sqlalchemy import Integer, String, any_, bindparam, column, func, or_, select, table, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from app import ledger
from app.accounts.models import Account
from app.bulk import NUMERIC_BINARY, collector_paused, copy_rows, numeric_binary
from app.billing.models import BundleUsage, PlanCountry, ServicePlan
from app.calls.models import Call
from app.extensions import db
from app.money import call_charge_places, quantize
from app.rating.bundles import rate_call
from app.rating.cost import ShortCallCharge, Tariff, billed_seconds
from app.rating.index import PrefixIndex, get_index
from app.rating.micro import minor_units_of
from app.rating.models import Rate, RateSheet
from tenants.models import Tenant, utcnow

log = logging.getLogger(__name__)

ZERO = Decimal(0)
_CHUNK = 20_000      # ids per IN (...) on databases without arrays
EXTENSION_MAX_CHARS = 8    # longer all-digit destinations are external numbers


@dataclass
class RatingSummary:
    rated: int = 0        # calls given a result now (errors included)
    charged: int = 0      # ledger debits written now
    errors: int = 0       # calls rated with a rating_error (no charge)
    skipped: int = 0      # already rated, being rated by another worker, or outside the scope
    bundle_seconds: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)   # currency -> sum of charges

    def as_dict(self) -> dict:
        return {"rated": self.rated, "charged": self.charged, "errors": self.errors,
                "skipped": self.skipped, "bundle_seconds": self.bundle_seconds,
                "amounts": {c: str(a) for c, a in self.amounts.items()}}


def bundle_period_start(day: date) -> date:
    """The billing period bundle minutes belong to: the calendar month (BundleUsage.period_start)."""
    return day.replace(day=1)


# -- rates in effect on a day, cached per sheet version and day -------------------------------
def tariffs_in_effect(sheet_id: int, day: date, *, all_tenants: bool = False) -> list[Tariff]:
    """The sheet's rows in effect on `day`: per prefix, the latest effective_from <= day."""
    rows = db.session.execute(
        select(Rate.id, Rate.prefix, Rate.country, Rate.description, Rate.rate_per_minute, Rate.connect_fee,
               Rate.first_block, Rate.increment, Rate.minimum_charge)
        .where(Rate.rate_sheet_id == sheet_id, Rate.effective_from <= day)
        .order_by(Rate.prefix, Rate.effective_from.desc())
        .execution_options(all_tenants=all_tenants, yield_per=20_000))
    out, last = [], None
    for r in rows:
        if r.prefix == last:
            continue
        last = r.prefix
        try:
            out.append(Tariff(r.prefix, r.country or "", r.description or "", r.rate_per_minute, r.connect_fee,
                              r.first_block, r.increment, r.minimum_charge, rate_id=r.id))
        except ValueError as e:
            log.warning("rate %d (prefix %s) of sheet %d skipped: %s", r.id, r.prefix, sheet_id, e)
    return out


def sheet_index(sheet_id: int, version: int, day: date, *, all_tenants: bool = False) -> PrefixIndex:
    """The prefix index of a sheet version's rates on `day` (cached; key as the AMI watcher's)."""
    return get_index(sheet_id, (version, day),
                     lambda: tariffs_in_effect(sheet_id, day, all_tenants=all_tenants))


def short_call_of(sheet) -> ShortCallCharge | None:
    if sheet.short_call_seconds and sheet.short_call_seconds > 0:
        return ShortCallCharge(sheet.short_call_seconds, sheet.short_call_charge)
    return None


# -- helpers ----------------------------------------------------------------------------------
def _is_pg(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _in(session, column, values):
    """column IN values: one array parameter on PostgreSQL, however many values."""
    values = list(values)
    if _is_pg(session):
        return column == any_(bindparam(None, values, type_=ARRAY(Integer)))
    return column.in_(values)


def _chunks(values, n=_CHUNK):
    values = list(values)
    for i in range(0, len(values), n):
        yield values[i:i + n]


@dataclass(slots=True)
class _Result:
    account_id: int
    call_id: int | None = None         # set by the caller, which knows the call's id
    country: str = ""
    rate_id: int | None = None
    cost: Decimal = ZERO
    bundle_seconds: int = 0
    charged_seconds: int = 0
    buy_cost: Decimal | None = None
    carrier_cost: Decimal | None = None
    error: str = ""


# -- the operation ----------------------------------------------------------------------------
def rate_calls(call_ids) -> RatingSummary:
    """Rate the given calls that are not rated yet; debit the ledger. Flushes, never commits."""
    session = db.session
    summary = RatingSummary()
    ids = sorted(set(int(i) for i in call_ids))
    if not ids:
        return summary
    session.flush()
    pg = _is_pg(session)

    calls = []
    for chunk in (_chunks(ids) if not pg else [ids]):
        q = (select(Call.id, Call.tenant_id, Call.account_id, Call.destination, Call.started_at, Call.billsec,
                    Call.carrier_id)
             .where(_in(session, Call.id, chunk), Call.rated_at.is_(None)))
        if pg:
            q = q.with_for_update(skip_locked=True)
        calls.extend(session.execute(q).all())
    summary.skipped = len(ids) - len(calls)
    if not calls:
        return summary
    calls.sort(key=lambda c: (c.started_at, c.id))     # bundle seconds go to the earliest calls first

    with collector_paused():
        results, accounts = _rate_rows(session, calls, summary)
        rated = [(r, c) for r, c in zip(results, calls) if r is not None]
        for r, c in rated:
            r.call_id = c.id
        _store(session, [r for r, _ in rated], utcnow(), pg)
        _debit(rated, accounts, summary)
    return summary


def carrier_of(value) -> int | None:
    """CDR(carrier) as sent by the switch ('3', or '' when no carrier was dialled) -> 3 / None."""
    if value is None or value.__class__ is int:
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


class CallRecord(NamedTuple):
    """A finished call not stored yet (`store_rated_calls`): the Call columns the switch gives,
    as they are stored: strings within the column sizes, billsec ≥ 0, naive UTC (`of` makes
    them so; `store_rated_calls` passes other objects through it)."""
    account_id: int
    server: str
    uniqueid: str
    destination: str
    started_at: datetime
    billsec: int
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    disposition: str = ""
    extension: str = ""
    linkedid: str = ""
    measured_billsec: int | None = None   # the watcher's measure where the switch's billsec differs
    recovered: bool = False               # from the switch's own CDR table (app/calls/switch_cdrs.py)
    carrier_id: int | None = None         # the dialplan's CDR(carrier): the carrier that carried it

    @classmethod
    def of(cls, account_id, server, uniqueid, destination, started_at, billsec, answered_at=None, ended_at=None,
           disposition="", extension="", linkedid="", measured_billsec=None, recovered=False,
           carrier_id=None) -> "CallRecord":
        billsec = int(billsec or 0)
        # tuple.__new__: a namedtuple's own __new__ is a Python function, and this runs per CDR
        return tuple.__new__(cls, (account_id, str(server or "")[:64], str(uniqueid)[:64], str(destination or "")[:40],
                                   started_at, billsec if billsec > 0 else 0, answered_at, ended_at,
                                   str(disposition or "")[:20], str(extension or "")[:40], str(linkedid or "")[:64],
                                   measured_billsec, bool(recovered), carrier_of(carrier_id)))


class _Account(NamedTuple):
    id: int
    tenant_id: int
    currency: str
    account_number: str
    places: int          # its reseller's call charge precision in its currency (money.call_charge_places)


_by_start = attrgetter("started_at")    # bundle seconds go to the earliest calls first (a stable sort)


def store_rated_calls(records) -> RatingSummary:
    """Bulk path: store CDRs that are not stored yet, already rated, and debit them.

    Same rules and results as storing the calls and then `rate_calls` on them, with fewer
    writes: each call is written once (PostgreSQL: ids drawn from the sequence in one query,
    the rows and their ledger entries by binary COPY). Calls already stored (same server and
    uniqueid) and accounts outside the scope are skipped. Flushes, never commits.

    PostgreSQL: CDRs are new almost always, so the batch is first written without looking:
    in a savepoint, the (server, uniqueid) unique constraint standing guard. If it finds a
    call stored already (a CDR sent twice, a retried job), the savepoint is rolled back, with
    its bundle and ledger moves, and the batch is written again without the stored calls.
    """
    session = db.session
    records = [r if r.__class__ is CallRecord else CallRecord.of(**r) if isinstance(r, dict) else CallRecord.of(*r)
               for r in records]
    session.flush()
    with collector_paused():
        if not _is_pg(session):
            return _store_records(session, records, look_first=True, pg=False)
        from psycopg.errors import UniqueViolation

        try:
            with session.begin_nested():
                return _store_records(session, records, look_first=False, pg=True)
        except UniqueViolation:
            return _store_records(session, records, look_first=True, pg=True)


def _store_records(session, records, *, look_first: bool, pg: bool) -> RatingSummary:
    summary = RatingSummary()
    # (server, uniqueid) -> record; filled backwards so that the first of a repeated CDR wins
    unique = {(r.server, r.uniqueid): r for r in reversed(records)}
    if look_first:
        for key in _stored_calls(session, list(unique), pg):
            del unique[key]
    summary.skipped = len(records) - len(unique)
    if not unique:
        return summary
    rows = sorted(reversed(unique.values()), key=_by_start)   # records; equal starts keep their order
    results, accounts = _rate_rows(session, rows, summary)
    if summary.skipped > len(records) - len(unique):       # accounts outside the scope: not stored
        rows, results = [c for c, r in zip(rows, results) if r is not None], [r for r in results if r is not None]
        if not rows:
            return summary
    now = utcnow()
    ids = _call_ids(session, len(rows)) if pg else [None] * len(rows)
    # The columns follow CallRecord's order, so a row is the record with the id, tenant and results around it.
    money = numeric_binary if pg else _unchanged     # the COPY takes money already encoded
    tenant_of = {a: account.tenant_id for a, account in accounts.items()}
    values = [(call_id, tenant_of[row.account_id]) + row
              + (now, res.country, res.rate_id, money(res.cost), res.bundle_seconds, res.charged_seconds,
                 money(res.buy_cost), money(res.carrier_cost), res.error[:120] if res.error else "", now)
              for call_id, row, res in zip(ids, rows, results)]
    if pg:
        copy_rows(session, "calls", _CALL_COPY_COLUMNS, values)
    else:
        session.connection().execute(Call.__table__.insert(),
                                     [dict(zip(_CALL_COLUMNS[1:], v[1:])) for v in values])
        found = {}
        for chunk in _chunks([v[4] for v in values], 5000):
            found.update(((s, u), i) for s, u, i in session.execute(
                select(Call.server, Call.uniqueid, Call.id).where(Call.uniqueid.in_(chunk))))
        ids = [found[(v[3], v[4])] for v in values]
    for call_id, res in zip(ids, results):
        res.call_id = call_id
    _debit(list(zip(results, rows)), accounts, summary)
    return summary


def _unchanged(value):
    return value


def _call_ids(session, n: int) -> list[int]:
    """n ids drawn from calls' sequence, in one statement. The sequence is named by a literal:
    evaluated per row, pg_get_serial_sequence would cost ten times the nextval."""
    seq = session.execute(text("SELECT pg_get_serial_sequence('calls', 'id')")).scalar_one()
    literal = "'" + seq.replace("'", "''") + "'"
    return session.execute(text(f"SELECT array(SELECT nextval({literal}) FROM generate_series(1, :n))"),
                           {"n": n}).scalar_one()


def _stored_calls(session, keys, pg: bool) -> set[tuple[str, str]]:
    """The (server, uniqueid) pairs among `keys` that calls holds already (any tenant's)."""
    by_server = defaultdict(list)
    for server, uniqueid in keys:
        by_server[server].append(uniqueid)
    stored = set()
    for server, uids in by_server.items():
        for chunk in _chunks(uids, 20_000):
            if pg:
                found = session.execute(text("SELECT uniqueid FROM calls WHERE server = :s"
                                             " AND uniqueid = ANY(CAST(:u AS varchar[]))"), {"s": server, "u": chunk})
            else:
                found = session.execute(select(Call.uniqueid).where(Call.server == server, Call.uniqueid.in_(chunk))
                                        .execution_options(all_tenants=True))
            stored.update((server, u) for u in found.scalars())
    return stored


# What store_rated_calls COPYs, with the PostgreSQL types of the binary format.
_CALL_COLUMNS = ("id", "tenant_id") + CallRecord._fields + (
    "rated_at", "country", "rate_id", "cost", "bundle_seconds", "charged_seconds", "buy_cost", "carrier_cost",
    "rating_error", "created_at")
_CALL_TYPES = ("int4", "int4",
               "int4", "varchar", "varchar", "varchar", "timestamp", "int4", "timestamp", "timestamp", "varchar",
               "varchar", "varchar", "int4", "bool", "int4",
               "timestamp", "varchar", "int4", NUMERIC_BINARY, "int4", "int4", NUMERIC_BINARY, NUMERIC_BINARY, "varchar",
               "timestamp")
_CALL_COPY_COLUMNS = tuple(zip(_CALL_COLUMNS, _CALL_TYPES))


def _rate_rows(session, calls, summary) -> tuple[list, dict]:
    """The rating itself, for rows with account_id, destination, started_at, billsec (in the
    order bundles are used). Returns one result per row, in that order (None for a row whose
    account is outside the scope; the caller sets each result's call_id), and the accounts."""
    # Rows are unpacked, never read as row.name: a Row's attribute goes through a failed type
    # lookup first, and a batch reads tens of thousands of them.
    account_ids = {c.account_id for c in calls}
    account_rows = session.execute(
        select(Account.id, Account.tenant_id, Account.currency, Account.account_number)
        .where(_in(session, Account.id, account_ids))).all()
    tenant_ids = {a[1] for a in account_rows}
    tenant_rows = session.execute(
        select(Tenant.id, Tenant.buy_rate_sheet_id, Tenant.call_charge_places)
        .where(_in(session, Tenant.id, tenant_ids))).all() if tenant_ids else []
    buy_of_tenant = {t: buy for t, buy, _ in tenant_rows}
    places_of_tenant = {t: places for t, _, places in tenant_rows}
    accounts = {a[0]: tuple.__new__(_Account, (*a, call_charge_places(places_of_tenant.get(a[1]), a[2])))
                for a in account_rows}
    sheet_of_plan = dict(session.execute(                  # account id -> its plan's rate sheet id
        select(ServicePlan.account_id, ServicePlan.rate_sheet_id)
        .where(_in(session, ServicePlan.account_id, account_ids))).all())
    opened: dict[int, dict[str, int]] = defaultdict(dict)    # account id -> {country: bundle minutes}
    if _is_pg(session):
        # One row per account: 1,000 accounts opening 30 countries each are 30,000 rows a batch,
        # and reading them row by row took 2.5 times the CPU of the grouped read.
        for account_id, countries, minutes in session.execute(
                select(PlanCountry.account_id, func.array_agg(PlanCountry.country), func.array_agg(PlanCountry.minutes))
                .where(_in(session, PlanCountry.account_id, account_ids)).group_by(PlanCountry.account_id)):
            opened[account_id] = dict(zip(countries, minutes))
    else:
        for account_id, country, minutes in session.execute(
                select(PlanCountry.account_id, PlanCountry.country, PlanCountry.minutes)
                .where(_in(session, PlanCountry.account_id, account_ids))):
            opened[account_id][country] = minutes
    sheet_ids = {s for s in sheet_of_plan.values() if s}
    sheets = {s.id: s for s in session.execute(
        select(RateSheet).where(_in(session, RateSheet.id, sheet_ids))).scalars()} if sheet_ids else {}
    buy_ids = {b for b in buy_of_tenant.values() if b}
    # A buy sheet belongs to the parent reseller, outside this scope: read by its id only.
    buy_sheets = {s.id: s for s in session.execute(
        select(RateSheet).where(_in(session, RateSheet.id, buy_ids))
        .execution_options(all_tenants=True)).scalars()} if buy_ids else {}

    internal = _internal_destinations(session, calls, accounts)

    # What each account's calls are rated with (or why they cannot be), worked out once.
    terms = {}                           # account id -> (tenant id, sheet id or None, error)
    for account_id, account in accounts.items():
        sheet = sheets.get(sheet_of_plan.get(account_id))
        if account_id not in sheet_of_plan:
            terms[account_id] = (account.tenant_id, None, "the account has no service plan")
        elif sheet is None:
            terms[account_id] = (account.tenant_id, None, "the account's plan has no rate sheet")
        elif sheet.currency != account.currency:
            terms[account_id] = (account.tenant_id, None, f"rate sheet “{sheet.name}” is in {sheet.currency}, "
                                                          f"the account in {account.currency}")
        else:
            terms[account_id] = (account.tenant_id, sheet.id, "")

    results: list[_Result | None] = []  # one per call, in order
    pairs = []                           # (call, result) of the calls in scope
    to_rate = defaultdict(list)          # (sheet id, day) -> (call, result)
    for c in calls:
        term = terms.get(c.account_id)
        if term is None:                 # not in this scope
            summary.skipped += 1
            results.append(None)
            continue
        r = _Result(c.account_id)
        results.append(r)
        pairs.append((c, r))
        answered = (c.billsec or 0) > 0
        if answered and internal and (term[0], c.destination) in internal:
            continue                     # an internal call: free
        if term[1] is None:
            r.error = term[2] if answered else ""
            continue
        to_rate[(term[1], c.started_at.date(), accounts[c.account_id].places)].append((c, r))

    bundle_calls = []     # (call, result, tariff, units, currency, short, places) to a country with minutes
    for (sheet_id, day, places), group in to_rate.items():
        sheet = sheets[sheet_id]
        index = sheet_index(sheet.id, sheet.version, day)
        short = short_call_of(sheet)
        durations = [max(c.billsec or 0, 0) for c, _ in group]
        # each call rounded once, at its reseller's call charge precision (units of 10^-places)
        batch = index.rate_batch([c.destination or "" for c, _ in group], durations, sheet.currency, short,
                                 places=places)
        rows = _as_list(batch.tariff_index)
        minor = _as_list(batch.minor)
        tariffs = index.tariffs
        to_decimal = minor_units_of(sheet.currency, places).to_decimal
        for (c, r), d, row, m in zip(group, durations, rows, minor):
            if row < 0:
                r.error = f"no rate for {c.destination or 'an empty destination'}" if d else ""
                continue
            t = tariffs[row]
            r.country, r.rate_id = t.country, t.rate_id
            minutes = opened[c.account_id].get(t.country)
            if minutes is None:
                if d:
                    r.error = (f"{t.country or 'non-geographic destination'} (prefix {t.prefix}) "
                               f"is not opened by the plan")
                continue
            if d == 0:
                continue
            if minutes > 0:
                bundle_calls.append((c, r, t, m, sheet.currency, short, places))
                continue
            r.cost = to_decimal(m) if m else ZERO
            fb = t.first_block
            r.charged_seconds = fb + -(-(max(d, fb) - fb) // t.increment) * t.increment   # cost.billed_seconds

    if bundle_calls:
        _use_bundles(session, bundle_calls, opened, accounts)

    _buy_costs(session, pairs, accounts, buy_of_tenant, buy_sheets, internal)
    _carrier_costs(session, pairs)
    return results, accounts


_UNSEEN = object()


def _debit(rated, accounts, summary) -> None:
    """Ledger debits for (result, call) pairs: one entry `call:<call id>` per call that costs."""
    entries = []
    new, Entry = tuple.__new__, ledger.Entry          # a namedtuple's own __new__ is Python code
    debits: dict[Decimal, Decimal | None] = {}         # cost -> its debit, None if it costs nothing
    sums: dict[int, Decimal] = {}                      # account id -> its charges
    summary.rated += len(rated)
    for r, c in rated:
        if r.bundle_seconds:
            summary.bundle_seconds += r.bundle_seconds
        if r.error:
            summary.errors += 1
            continue
        cost = r.cost                                  # costs repeat: each compared and negated once
        debit = debits.get(cost, _UNSEEN)
        if debit is _UNSEEN:
            debit = debits[cost] = -cost if cost > 0 else None
        if debit is not None:
            entries.append(new(Entry, (r.account_id, debit, "call", f"call:{r.call_id}",
                                       f"Call to {c.destination}, {c.billsec} s", accounts[r.account_id].places)))
            sums[r.account_id] = sums.get(r.account_id, ZERO) + cost
    for account_id, total in sums.items():
        currency = accounts[account_id].currency
        summary.amounts[currency] = summary.amounts.get(currency, ZERO) + total
    if entries:
        # The keys are new: `call:<id>` of calls rated in this transaction (COPY, not INSERT).
        summary.charged = len(ledger.post_many(entries, new_keys=True))


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _could_be_extension(destination: str) -> bool:
    """Extension numbers are short and SIP usernames are not all digits; a full E.164 number
    (9+ digits) is not looked up among the extensions (a batch of 50,000 calls would be 50,000
    lookups for nothing). Extension numbers have at most 8 digits (base extension ≤ 99,999,999)."""
    return len(destination) <= EXTENSION_MAX_CHARS or not destination.lstrip("+").isdigit()


def _internal_destinations(session, calls, accounts) -> set[tuple[int, str]]:
    """(tenant id, destination) pairs that are an active extension of that reseller."""
    from provisioning.models import Extension

    wanted = {(accounts[c.account_id].tenant_id, c.destination) for c in calls
              if c.destination and (c.billsec or 0) > 0 and c.account_id in accounts
              and _could_be_extension(c.destination)}
    if not wanted:
        return set()
    found = set()
    tenants = {t for t, _ in wanted}
    destinations = sorted({d for _, d in wanted})
    pg = _is_pg(session)
    for chunk in _chunks(destinations, 5000):
        wanted_in = ((lambda col: col == any_(bindparam(None, chunk, type_=ARRAY(String(64))))) if pg
                     else (lambda col: col.in_(chunk)))
        rows = session.execute(
            select(Extension.tenant_id, Extension.number, Extension.sip_username)
            .where(Extension.tenant_id.in_(tenants), Extension.active.is_(True),
                   or_(wanted_in(Extension.number), wanted_in(Extension.sip_username))))
        for t, number, sip in rows:
            found.update(((t, number), (t, sip)))
    return wanted & found


def _use_bundles(session, bundle_calls, opened, accounts) -> None:
    """Bundle seconds first, then the rate, per account, country and period, oldest call first.

    The period's counter rows are locked (and created first when missing) before they are
    read, so a concurrent rater of the same account waits; they move by `+ :n`.
    """
    keys = sorted({(c.account_id, t.country, bundle_period_start(c.started_at.date()))
                   for c, _, t, _, _, _, _ in bundle_calls})
    tenant_of = {a: account.tenant_id for a, account in accounts.items()}
    used: dict[tuple, int] = {}
    if _is_pg(session):
        # A few statements for the batch, however many counters (the accounts come from the
        # scope): lock and read the counters; create the missing ones (a new period, a new
        # country), then lock and read those. Locking by a no-op upsert would write a new
        # version of every counter in every batch.
        def lock(wanted):
            a, c, p = (list(x) for x in zip(*wanted))
            for row in session.execute(text(
                    "SELECT u.account_id, u.country, u.period_start, u.seconds_used FROM bundle_usage u"
                    " JOIN unnest(CAST(:a AS integer[]), CAST(:c AS varchar[]), CAST(:p AS date[])) AS v(a, c, p)"
                    " ON u.account_id = v.a AND u.country = v.c AND u.period_start = v.p"
                    " ORDER BY u.account_id, u.country, u.period_start FOR UPDATE OF u"), {"a": a, "c": c, "p": p}):
                used[(row.account_id, row.country, row.period_start)] = row.seconds_used

        lock(keys)
        missing = [k for k in keys if k not in used]
        if missing:
            a, c, p = (list(x) for x in zip(*missing))
            session.execute(text(
                "INSERT INTO bundle_usage (tenant_id, account_id, country, period_start, seconds_used)"
                " SELECT t, a, c, p, 0 FROM unnest(CAST(:t AS integer[]), CAST(:a AS integer[]),"
                " CAST(:c AS varchar[]), CAST(:p AS date[])) AS v(t, a, c, p)"
                " ON CONFLICT (account_id, country, period_start) DO NOTHING"),
                {"t": [tenant_of[x] for x in a], "a": a, "c": c, "p": p})
            lock(missing)
        keys = []
    for chunk in _chunks(keys, 2000):
        insert = sqlite.insert
        stmt = insert(BundleUsage).values([
            {"tenant_id": tenant_of[a], "account_id": a, "country": country, "period_start": period,
             "seconds_used": 0} for a, country, period in chunk])
        stmt = stmt.on_conflict_do_update(
            index_elements=["account_id", "country", "period_start"],
            set_={"seconds_used": stmt.table.c.seconds_used},
        ).returning(BundleUsage.account_id, BundleUsage.country, BundleUsage.period_start, BundleUsage.seconds_used)
        for row in session.execute(stmt, execution_options={"all_tenants": True}):
            used[(row.account_id, row.country, row.period_start)] = row.seconds_used
    added: dict[tuple, int] = defaultdict(int)
    zero = {}
    for c, r, t, m, currency, short, places in bundle_calls:   # already in (started_at, id) order
        key = (c.account_id, t.country, bundle_period_start(c.started_at.date()))
        allowance = 60 * opened[c.account_id][t.country]
        left = allowance - used[key] - added[key]
        d = c.billsec
        # bundles.rate_call's three cases; the two common ones without Decimal arithmetic
        if left <= 0:                  # the bundle is used up: the full formula, as rated (m)
            r.cost = minor_units_of(currency, places).to_decimal(m) if m else ZERO
            r.charged_seconds = billed_seconds(d, t.first_block, t.increment)
        elif d <= left:                # wholly inside the bundle: free
            if (currency, places) not in zero:
                zero[(currency, places)] = quantize(ZERO, currency, places)
            r.bundle_seconds, r.cost = d, zero[(currency, places)]
            added[key] += d
        else:                          # crosses the end of the bundle
            rated = rate_call(d, t, currency, bundle_remaining_seconds=left, short_call=short, places=places)
            r.bundle_seconds, r.charged_seconds, r.cost = rated.bundle_seconds, rated.charged_seconds, rated.cost
            added[key] += rated.bundle_seconds
    moved = [(a, country, period, n) for (a, country, period), n in sorted(added.items()) if n]
    if not moved:
        return
    # One statement for the batch; the rows are those locked (and so scoped) above.
    if _is_pg(session):
        a, c, p, n = (list(x) for x in zip(*moved))
        session.execute(text(
            "UPDATE bundle_usage SET seconds_used = bundle_usage.seconds_used + v.n"
            " FROM unnest(CAST(:a AS integer[]), CAST(:c AS varchar[]), CAST(:p AS date[]), CAST(:n AS integer[]))"
            " AS v(a, c, p, n)"
            " WHERE bundle_usage.account_id = v.a AND bundle_usage.country = v.c AND bundle_usage.period_start = v.p"),
            {"a": a, "c": c, "p": p, "n": n})
    else:
        t = BundleUsage.__table__
        session.connection().execute(
            update(t).where(t.c.account_id == bindparam("_a"), t.c.country == bindparam("_c"),
                            t.c.period_start == bindparam("_p"))
            .values(seconds_used=t.c.seconds_used + bindparam("_n")),
            [{"_a": a, "_c": c, "_p": p, "_n": n} for a, c, p, n in moved])


def _buy_costs(session, pairs, accounts, buy_of_tenant, buy_sheets, internal) -> None:
    """What the account's reseller pays its parent for each call: the full call, no bundles,
    rounded at the parent's (the buy sheet owner's) call charge precision: the seller's rule."""
    groups = defaultdict(list)
    buy_of_account = {}                  # account id -> (buy sheet id, 0 in its currency, places), or None
    seller_places = dict(session.execute(
        select(Tenant.id, Tenant.call_charge_places)
        .where(_in(session, Tenant.id, {s.tenant_id for s in buy_sheets.values()}))
        .execution_options(all_tenants=True)).all()) if buy_sheets else {}
    for account_id, account in accounts.items():
        sheet = buy_sheets.get(buy_of_tenant.get(account.tenant_id))
        # A buy sheet in another currency than the account gives no buy price (no conversion):
        # the margin report counts such calls as having none, never adds two currencies.
        if sheet is not None and sheet.currency == account.currency:
            places = call_charge_places(seller_places.get(sheet.tenant_id), sheet.currency)
            buy_of_account[account_id] = (sheet.id, quantize(ZERO, sheet.currency, places), places)
        else:
            buy_of_account[account_id] = None
    for c, r in pairs:
        buy = buy_of_account[c.account_id]
        if buy is None:
            continue
        if (c.billsec or 0) <= 0 or (internal and (accounts[c.account_id].tenant_id, c.destination) in internal):
            r.buy_cost = buy[1]
            continue
        groups[(buy[0], c.started_at.date(), buy[2])].append((c, r))
    for (sheet_id, day, places), group in groups.items():
        sheet = buy_sheets[sheet_id]
        index = sheet_index(sheet.id, sheet.version, day, all_tenants=True)
        batch = index.rate_batch([c.destination or "" for c, _ in group], [c.billsec for c, _ in group],
                                 sheet.currency, short_call_of(sheet), places=places)
        for (_, r), cost in zip(group, batch.costs()):
            r.buy_cost = cost


# The platform's carriers (app.routing's table, read here by name: rating and routing are
# independent packages) — only their buy sheets matter to rating.
_carriers = table("carriers", column("id"), column("buy_rate_sheet_id"), column("tenant_id"))


def _carrier_costs(session, pairs) -> None:
    """What the platform pays the carrier that carried each call (CDR(carrier)): the full call
    at the carrier's buy sheet, rounded at the platform's call charge precision. No carrier, or
    a carrier without a buy sheet or a rate for the destination: None (unknown, never 0)."""
    carried = [(c, r) for c, r in pairs if getattr(c, "carrier_id", None)]
    if not carried:
        return
    sheet_of = dict(session.execute(
        select(_carriers.c.id, _carriers.c.buy_rate_sheet_id)
        .where(_in(session, _carriers.c.id, {c.carrier_id for c, _ in carried}))).all())
    sheet_ids = {s for s in sheet_of.values() if s}
    if not sheet_ids:
        return
    sheets = {s.id: s for s in session.execute(
        select(RateSheet).where(_in(session, RateSheet.id, sheet_ids)).execution_options(all_tenants=True)).scalars()}
    places_of = dict(session.execute(
        select(Tenant.id, Tenant.call_charge_places).where(_in(session, Tenant.id, {s.tenant_id for s in sheets.values()}))
        .execution_options(all_tenants=True)).all())
    groups = defaultdict(list)
    for c, r in carried:
        sheet = sheets.get(sheet_of.get(c.carrier_id))
        if sheet is None:
            continue
        places = call_charge_places(places_of.get(sheet.tenant_id), sheet.currency)
        if (c.billsec or 0) <= 0:
            r.carrier_cost = quantize(ZERO, sheet.currency, places)
            continue
        groups[(sheet.id, c.started_at.date(), places)].append((c, r))
    for (sheet_id, day, places), group in groups.items():
        sheet = sheets[sheet_id]
        index = sheet_index(sheet.id, sheet.version, day, all_tenants=True)
        batch = index.rate_batch([c.destination or "" for c, _ in group], [c.billsec for c, _ in group],
                                 sheet.currency, short_call_of(sheet), places=places)
        rows = _as_list(batch.tariff_index)
        for (_, r), row, cost in zip(group, rows, batch.costs()):
            r.carrier_cost = cost if row >= 0 else None


def _store(session, results, now: datetime, pg: bool) -> None:
    if not results:
        return
    if pg:
        cols = list(zip(*[(r.call_id, r.country, r.rate_id, r.cost, r.bundle_seconds, r.charged_seconds,
                           r.buy_cost, r.carrier_cost, r.error[:120]) for r in results]))
        session.execute(text(
            "UPDATE calls SET rated_at = :now, country = v.country, rate_id = v.rate_id, cost = v.cost,"
            " bundle_seconds = v.bundle_seconds, charged_seconds = v.charged_seconds, buy_cost = v.buy_cost,"
            " carrier_cost = v.carrier_cost, rating_error = v.error"
            " FROM unnest(CAST(:id AS integer[]), CAST(:country AS varchar[]), CAST(:rate_id AS integer[]),"
            " CAST(:cost AS numeric[]), CAST(:bundle AS integer[]), CAST(:charged AS integer[]),"
            " CAST(:buy AS numeric[]), CAST(:carrier AS numeric[]), CAST(:error AS varchar[]))"
            " AS v(id, country, rate_id, cost, bundle_seconds, charged_seconds, buy_cost, carrier_cost, error)"
            " WHERE calls.id = v.id"),
            {"now": now, "id": list(cols[0]), "country": list(cols[1]), "rate_id": list(cols[2]),
             "cost": list(cols[3]), "bundle": list(cols[4]), "charged": list(cols[5]), "buy": list(cols[6]),
             "carrier": list(cols[7]), "error": list(cols[8])})
    else:
        # Core executemany: the ids come from the scoped select above.
        calls = Call.__table__
        session.connection().execute(update(calls).where(calls.c.id == bindparam("_id")).values(
            rated_at=now, country=bindparam("_country"), rate_id=bindparam("_rate_id"), cost=bindparam("_cost"),
            bundle_seconds=bindparam("_bundle"), charged_seconds=bindparam("_charged"),
            buy_cost=bindparam("_buy"), carrier_cost=bindparam("_carrier"), rating_error=bindparam("_error")),
            [{"_id": r.call_id, "_country": r.country, "_rate_id": r.rate_id, "_cost": r.cost,
              "_bundle": r.bundle_seconds, "_charged": r.charged_seconds, "_buy": r.buy_cost,
              "_carrier": r.carrier_cost,
              "_error": r.error[:120]} for r in results])
    # Loaded Call objects would otherwise show the values from before these UPDATEs.
    for r in results:
        obj = session.identity_map.get(session.identity_key(Call, r.call_id))
        if obj is not None:
            session.expire(obj)


__all__ = ["CallRecord", "RatingSummary", "bundle_period_start", "rate_calls", "sheet_index", "short_call_of",
           "store_rated_calls", "tariffs_in_effect"]
