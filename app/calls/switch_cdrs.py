"""The switch's own CDRs: a source of finished calls that does not depend on the AMI link.

Asterisk's `cdr_pgsql` writes one row per finished call into `switch_cdrs` (the exact
configuration is in docs/asterisk.md). The columns are the ones cdr_pgsql fills by name;
`server` comes from the dialplan (`Set(CDR(server)=pbx1)`), and the last two are ours.

`reconcile_switch_cdrs()` matches the rows to recorded calls by (server, uniqueid): a call the
watcher never recorded (it was stopped, crashed or cut off from the switch when the call
ended) is stored, rated and charged then, flagged `recovered`. The unique (server, uniqueid)
of calls and the ledger key `call:<id>` make that happen once, however often it runs. It runs
after every reconnect of a watcher's link and every minute from cron. Flushes, never commits.
"""
import logging
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Index, Integer, String, func, select, text
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.models import Account
from app.calls.models import Call
from app.extensions import db
from tenants.models import utcnow
from tenants.scope import tenant_scope, unscoped

log = logging.getLogger(__name__)

# A row younger than this is left to the watcher, whose record normally lands first.
GRACE = timedelta(seconds=60)


class SwitchCdr(db.Model):
    """One row as Asterisk's cdr_pgsql writes it (times in UTC: `timezone=UTC`)."""
    __tablename__ = "switch_cdrs"
    __table_args__ = (
        Index("ix_switch_cdrs_pending", "id", postgresql_where=text("reconciled_at IS NULL"),
              sqlite_where=text("reconciled_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    calldate: Mapped[datetime] = mapped_column(default=utcnow)      # the call's start
    answer: Mapped[datetime | None] = mapped_column()
    end: Mapped[datetime | None] = mapped_column()
    clid: Mapped[str] = mapped_column(String(80), default="")
    src: Mapped[str] = mapped_column(String(80), default="")
    dst: Mapped[str] = mapped_column(String(80), default="")
    dcontext: Mapped[str] = mapped_column(String(80), default="")
    channel: Mapped[str] = mapped_column(String(80), default="")
    dstchannel: Mapped[str] = mapped_column(String(80), default="")
    lastapp: Mapped[str] = mapped_column(String(80), default="")
    lastdata: Mapped[str] = mapped_column(String(80), default="")
    duration: Mapped[int] = mapped_column(default=0)
    billsec: Mapped[int] = mapped_column(default=0)
    disposition: Mapped[str] = mapped_column(String(45), default="")
    amaflags: Mapped[int] = mapped_column(default=0)
    accountcode: Mapped[str] = mapped_column(String(20), default="")
    uniqueid: Mapped[str] = mapped_column(String(150), default="")
    userfield: Mapped[str] = mapped_column(String(255), default="")
    peeraccount: Mapped[str] = mapped_column(String(20), default="")
    linkedid: Mapped[str] = mapped_column(String(150), default="")
    sequence: Mapped[int] = mapped_column(default=0)
    server: Mapped[str] = mapped_column(String(64), default="")      # CDR(server), set in the dialplan
    carrier: Mapped[str] = mapped_column(String(20), default="")     # CDR(carrier): the carrier's id
    # Ours: when the row was matched to a call, and which.
    reconciled_at: Mapped[datetime | None] = mapped_column()
    call_id: Mapped[int | None] = mapped_column()


def reconcile_switch_cdrs(*, limit: int = 5000, now: datetime | None = None, grace: timedelta = GRACE) -> dict:
    """Bill every switch CDR that no recorded call matches, once; mark every row reconciled.

    Returns {"matched": n, "recovered": n, "ignored": n} (ignored: no account code, an unknown
    account, or not the call's billed leg)."""
    from app.rating.cdr import CallRecord, store_rated_calls

    now = now or utcnow()
    session = db.session
    with unscoped():
        ended = func.coalesce(SwitchCdr.end, SwitchCdr.calldate)
        q = (select(SwitchCdr).where(SwitchCdr.reconciled_at.is_(None), ended <= now - grace)
             .order_by(SwitchCdr.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)   # two runs at once take different rows
        rows = list(session.execute(q).scalars())
        if not rows:
            return {"matched": 0, "recovered": 0, "ignored": 0}
        numbers = {r.accountcode for r in rows if r.accountcode}
        accounts = {n: (i, t) for n, i, t in session.execute(
            select(Account.account_number, Account.id, Account.tenant_id)
            .where(Account.account_number.in_(numbers)))} if numbers else {}
        stored = _stored(session, {(r.server, r.uniqueid) for r in rows})
        by_tenant: dict[int, list] = {}
        ignored = 0
        seen_calls: set[tuple[str, str]] = set()
        for r in rows:
            key = (r.server, r.uniqueid)
            ids = accounts.get(r.accountcode)
            # One bill per call: the leg whose uniqueid is the call's linkedid (Asterisk's A leg).
            if key in stored or ids is None or not r.uniqueid or (r.linkedid and r.linkedid != r.uniqueid) \
                    or key in seen_calls:
                ignored += key not in stored
                continue
            seen_calls.add(key)
            by_tenant.setdefault(ids[1], []).append(CallRecord.of(
                ids[0], r.server, r.uniqueid, r.dst, r.calldate, r.billsec if r.answer else 0, r.answer, r.end,
                r.disposition, _extension(r.channel), r.linkedid or r.uniqueid, recovered=True,
                carrier_id=r.carrier))
    recovered = 0
    for tenant_id, records in sorted(by_tenant.items()):
        with tenant_scope(tenant_id, descendants=False):
            recovered += store_rated_calls(records).rated
    with unscoped():
        found = _stored(session, {(r.server, r.uniqueid) for r in rows})
        for r in rows:
            r.reconciled_at = now
            r.call_id = found.get((r.server, r.uniqueid))
        if recovered:
            log.warning("%d calls that ended while the watcher was away were billed from the switch's CDRs",
                        recovered)
        session.flush()
    return {"matched": sum(1 for r in rows if r.call_id is not None) - recovered, "recovered": recovered,
            "ignored": ignored}


def _stored(session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    out = {}
    by_server: dict[str, list[str]] = {}
    for server, uid in keys:
        by_server.setdefault(server, []).append(uid)
    for server, uids in by_server.items():
        out.update(((server, u), i) for u, i in session.execute(
            select(Call.uniqueid, Call.id).where(Call.server == server, Call.uniqueid.in_(uids))
            .execution_options(all_tenants=True)))
    return out


def _extension(channel: str) -> str:
    """`PJSIP/1001-00000001` -> `1001`, as the watcher's records name it; '' for Local channels."""
    tech, _, rest = channel.partition("/")
    if not rest or tech in ("Local", "Message", "Bridge", "Recorder", "Snoop"):
        return ""
    endpoint, dash, _ = rest.rpartition("-")
    return endpoint if dash else rest


__all__ = ["GRACE", "SwitchCdr", "reconcile_switch_cdrs"]
