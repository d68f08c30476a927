"""Finished calls into the database in batches: the watcher's side of CDR rating.

`CdrWriter` is the queue: one writer thread takes whatever CDRs arrived while it wrote the
previous batch. At low load a CDR is written alone, at once (no timer to wait for); under
load the batches grow by themselves, up to `max_batch`, and each costs one transaction.

`write_cdrs(records)` is the transaction: accounts named by account code (platform-wide, one
query), then per reseller `app.rating.cdr.store_rated_calls` (the call row written once,
already rated, its ledger debit beside it), one commit. Why here and not in an RQ job: the
balance must move as the call ends (the next deadlines read it), and this process keeps the
prefix indexes warm for admission; an RQ work horse is a fresh fork per job. The RQ job
`workers.rating.rate_pending_calls` is the catch-up for what could not be rated here:

- a deadlock or serialization failure against another writer: the batch is tried again;
- any other error while rating (a bug, a bad row): the calls are stored unrated (INSERT … ON
  CONFLICT DO NOTHING) and the job rates them within a minute;
- a call stored before (a retried or repeated CDR) is skipped, rated or not: the job rates it
  if it is not.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from operator import itemgetter

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

log = logging.getLogger("ringledger.ami.cdrs")

ATTEMPTS = 3


class CdrWriter:
    """Queue CDRs for `write(list[dict])`, called in one thread of its own (it brings its own
    app context: DatabasePolicy passes `write_cdrs` wrapped in one)."""

    def __init__(self, write, *, max_batch: int = 50_000):
        self._write = write
        self.max_batch = max_batch
        self._pending: list[tuple[dict, Future]] = []
        self._lock = threading.Lock()
        self._busy = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ami-cdr")
        self.batches = 0                 # written so far (for tests and the log)

    def submit(self, record: dict) -> Future:
        done: Future = Future()
        with self._lock:
            if not self._busy:
                try:
                    self._thread.submit(self._drain)
                except RuntimeError as e:     # closed: the watcher is stopping
                    done.set_exception(e)
                    return done
                self._busy = True
            self._pending.append((record, done))
        return done

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                if not batch:
                    self._busy = False
                    return
            try:
                self._write([record for record, _ in batch])
            except BaseException as e:   # the watcher retries each CDR on its own
                for _, done in batch:
                    done.set_exception(e)
            else:
                for _, done in batch:
                    done.set_result(None)
            self.batches += 1

    def close(self, wait: bool = True) -> None:
        self._thread.shutdown(wait=wait, cancel_futures=not wait)


_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def utc_naive(value) -> datetime | None:
    """Epoch seconds or an aware datetime -> naive UTC (the columns' convention)."""
    if value.__class__ is datetime:      # the tracker's aware datetimes first: three per CDR
        # Exact, and a tenth of the time of astimezone().replace(tzinfo=None).
        return value if value.tzinfo is None else _NAIVE_EPOCH + (value - _UTC_EPOCH)
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
    if value.tzinfo is not None:
        return _NAIVE_EPOCH + (value - _UTC_EPOCH)
    return value


# The CDR fields a call record is made of. The watcher's call tracker sets every one of them,
# so one itemgetter call reads them all; a record missing some is read field by field.
_CDR_FIELDS = ("accountcode", "server", "uniqueid", "destination", "start", "billsec", "answer", "end",
               "disposition", "extension", "linkedid", "channel")
_cdr_fields = itemgetter(*_CDR_FIELDS)


def call_records(records: list[dict], accounts: dict[str, tuple[int, int]]) -> dict[int, list]:
    """The CDRs of known accounts as CallRecords, per tenant id; the others are logged."""
    from app.rating.cdr import CallRecord

    of = CallRecord.of
    by_tenant: dict[int, list] = {}
    for record in records:
        try:
            fields = _cdr_fields(record)
        except KeyError:
            fields = tuple(map(record.get, _CDR_FIELDS))
        number, server, uniqueid, destination, start, billsec, answer, end, disposition, extension, linkedid, \
            channel = fields
        ids = accounts.get(number or "")
        if ids is None or not uniqueid:
            log.warning("CDR %s/%s not stored: %s (%s to %s, %ss)", server, uniqueid,
                        "it has no uniqueid" if not uniqueid else f"unknown account {number}" if number
                        else "no account code", channel, destination, billsec)
            continue
        calls = by_tenant.get(ids[1])
        if calls is None:
            calls = by_tenant[ids[1]] = []
        end = utc_naive(end)
        measured = record.get("measured_billsec")
        carrier = record.get("carrier")         # CDR(carrier), set by the dialplan before each Dial
        calls.append(of(ids[0], server, uniqueid, destination, utc_naive(start) or end or utc_naive(time.time()),
                        billsec, answer and utc_naive(answer), end, disposition, extension, linkedid)
                     if measured is None and not carrier else
                     of(ids[0], server, uniqueid, destination, utc_naive(start) or end or utc_naive(time.time()),
                        billsec, answer and utc_naive(answer), end, disposition, extension, linkedid, measured,
                        carrier_id=carrier))
    return by_tenant


def write_cdrs(records: list[dict]) -> int:
    """Store and rate a batch of CDRs in one transaction (see the module). Runs in an app
    context; commits. Returns the number of calls written now."""
    from app.bulk import collector_paused

    with collector_paused():
        return _write_cdrs(records)


def _write_cdrs(records: list[dict]) -> int:
    from app.accounts.models import Account
    from app.extensions import db
    from tenants.scope import unscoped

    numbers = {r.get("accountcode") for r in records if r.get("accountcode")}
    with unscoped():
        accounts = {n: (i, t) for n, i, t in db.session.execute(
            select(Account.account_number, Account.id, Account.tenant_id)
            .where(Account.account_number.in_(numbers)))} if numbers else {}
    db.session.commit()
    by_tenant = call_records(records, accounts)
    if not by_tenant:
        return 0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _store_rated(by_tenant)
        except OperationalError as e:
            db.session.rollback()
            if attempt == ATTEMPTS or not _retryable(e):
                raise
            log.warning("%d CDRs: %s; trying again", len(records), _pgcode(e) or e.__class__.__name__)
            time.sleep(0.05 * attempt)
        except Exception:
            db.session.rollback()
            log.exception("%d CDRs could not be rated: stored unrated for the rating job", len(records))
            return _store_unrated(by_tenant)
    return 0


def _store_rated(by_tenant) -> int:
    from app.extensions import db
    from app.rating.cdr import store_rated_calls
    from tenants.scope import tenant_scope

    written = 0
    for tenant_id, calls in sorted(by_tenant.items()):
        with tenant_scope(tenant_id, descendants=False):
            written += store_rated_calls(calls).rated
    db.session.commit()
    return written


def _store_unrated(by_tenant) -> int:
    """The calls without their rating (the catch-up job rates them); a stored one is kept."""
    from app.calls.models import Call
    from app.extensions import db
    from tenants.scope import tenant_scope

    session = db.session
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    written = 0
    for tenant_id, calls in sorted(by_tenant.items()):
        rows = [dict(c._asdict(), tenant_id=tenant_id) for c in calls]   # CallRecord.of cut them to size
        with tenant_scope(tenant_id, descendants=False):
            for i in range(0, len(rows), 2000):      # 12 parameters a row, 65,535 a statement
                stmt = (insert(Call).values(rows[i:i + 2000])
                        .on_conflict_do_nothing(index_elements=["server", "uniqueid"]))
                written += session.execute(stmt, execution_options={"all_tenants": True}).rowcount or 0
    session.commit()
    return written


def _pgcode(error) -> str:
    return getattr(getattr(error, "orig", None), "sqlstate", None) or ""


def _retryable(error) -> bool:
    """Deadlock detected, serialization failure: try the transaction again."""
    return _pgcode(error) in ("40P01", "40001")


__all__ = ["CdrWriter", "call_records", "utc_naive", "write_cdrs"]
