"""Whole-deck CSV import (a background job with progress) and streaming export of a rate sheet.

Import rules (docs/rating-database.md):
- the deck is read by `deck.parse_deck`; every bad line is reported with its line number and
  reason. Any bad line rejects the whole file (nothing imported) unless the user ticked
  "import the good lines";
- **merge** (the default): each deck line upserts the sheet's row with the same prefix and
  effective date; other rows stay (so a deck of next month's prices leaves today's alone).
  **replace**: the same, then every row of the sheet that the deck does not name is deleted,
  so the sheet ends up equal to the deck;
- a line without an effective date is the "always" row (2000-01-01), as in the Rates Manager;
- one transaction: PostgreSQL gets the rows by COPY into a temporary table, then one
  INSERT … SELECT … ON CONFLICT DO UPDATE (unchanged rows are not rewritten) and, for replace,
  one DELETE; SQLite gets the same through executemany. The sheet's version moves once.
The uploaded file waits in `rate_imports.content` (any worker can read it) and is cleared when
the import ends; the row keeps the outcome and the first errors for the progress page.
"""
import logging
import uuid
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, delete, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app.bulk import collector_paused, copy_rows
from app.extensions import db
from app.jobs import set_progress
from tenants.mixins import TenantOwned
from tenants.models import utcnow

log = logging.getLogger(__name__)

MODES = {"merge": "Merge: add and update rows, keep the others",
         "replace": "Replace: the sheet becomes exactly the file"}
DATE_ORDERS = {"": "Dates like 03/04/2025 are an error", "day": "Day first (03/04 = 3 April)",
               "month": "Month first (03/04 = 4 March)"}
ERRORS_KEPT = 1000          # reported lines kept on the import row (the count is always exact)
DEFAULT_EFFECTIVE = date(2000, 1, 1)
COPY_CHUNK = 20_000


class RateImport(TenantOwned, db.Model):
    """One uploaded deck: its job, settings, outcome and reported lines."""
    __tablename__ = "rate_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    rate_sheet_id: Mapped[int] = mapped_column(ForeignKey("rate_sheets.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    mode: Mapped[str] = mapped_column(String(10), default="merge")
    import_good_lines: Mapped[bool] = mapped_column(default=False)
    day_first: Mapped[str] = mapped_column(String(5), default="")       # '', 'day', 'month'
    # queued -> running -> done | rejected (bad lines, nothing imported) | failed (an error)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    lines: Mapped[int] = mapped_column(default=0)                       # rate lines read
    imported: Mapped[int] = mapped_column(default=0)                    # rows inserted or updated
    deleted: Mapped[int] = mapped_column(default=0)                     # rows removed (replace)
    error_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)           # [[line, reason], ...] (first ERRORS_KEPT)
    message: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "rejected", "failed")


def new_import(sheet, content: bytes, *, filename: str = "", mode: str = "merge", import_good_lines: bool = False,
               day_first: str = "", created_by_id: int | None = None) -> RateImport:
    """Record an upload; the caller enqueues `workers.rating.import_rate_deck(imp.id, job_id=imp.job_id)`."""
    if mode not in MODES:
        raise ValueError(f"unknown import mode {mode!r}")
    imp = RateImport(tenant_id=sheet.tenant_id, rate_sheet_id=sheet.id, job_id=f"rate-import-{uuid.uuid4().hex}",
                     filename=(filename or "")[:255], mode=mode, import_good_lines=bool(import_good_lines),
                     day_first=day_first if day_first in DATE_ORDERS else "", content=content,
                     created_by_id=created_by_id)
    db.session.add(imp)
    db.session.flush()
    return imp


# -- the job's work --------------------------------------------------------------------------
def run_import(import_id: int) -> dict:
    """Parse and write one uploaded deck; commits its own progress (a job, not a request)."""
    from tenants.scope import tenant_scope, unscoped

    with unscoped():
        tenant_id = db.session.execute(select(RateImport.tenant_id).where(RateImport.id == import_id)).scalar_one()
    db.session.commit()
    with tenant_scope(tenant_id, descendants=False):
        imp = db.session.execute(select(RateImport).where(RateImport.id == import_id)).scalar_one()
        if imp.finished:
            return {"status": imp.status}
        imp.status = "running"
        db.session.commit()
        set_progress(0, 100, stage="Reading the file")
        try:
            outcome = _run(imp)
        except Exception as e:
            db.session.rollback()
            log.exception("rate import %d failed", import_id)
            imp = db.session.execute(select(RateImport).where(RateImport.id == import_id)).scalar_one()
            imp.status, imp.message = "failed", f"The import failed: {e}"[:255]
            imp.content, imp.finished_at = None, utcnow()
            db.session.commit()
            set_progress(100, 100, stage="Failed")
            raise
        db.session.commit()
        set_progress(100, 100, stage="Done")
        return outcome


def _run(imp: RateImport) -> dict:
    from app.rating.deck import parse_deck
    from app.rating.models import RateSheet
    from app.rating.sheets import bump_version

    sheet = db.session.execute(select(RateSheet).where(RateSheet.id == imp.rate_sheet_id)).scalar_one()
    day_first = {"day": True, "month": False}.get(imp.day_first)
    result = parse_deck(imp.content or b"", day_first=day_first)
    imp.content = None                         # the file is not needed any more (nor kept)
    rows = _dedupe(result)                     # may add errors: two lines for one DB row
    errors = sorted(result.errors)
    imp.lines = len(rows) + len(errors)
    imp.error_count = len(errors)
    imp.errors = [[e.line, e.reason] for e in errors[:ERRORS_KEPT]]
    set_progress(25, 100, stage=f"Checked {imp.lines:,} lines", lines=imp.lines, errors=len(errors))
    if errors and not imp.import_good_lines:
        return _finish(imp, "rejected", f"{len(errors):,} bad line{'s' if len(errors) != 1 else ''}: nothing imported.")
    if not rows:
        return _finish(imp, "rejected", "The file has no rate lines to import.")
    with collector_paused():   # 170,000 live rows: the cyclic GC would rescan them again and again
        imported, deleted = write_rows(sheet, rows, imp.mode,
                                       progress=lambda done: set_progress(
                                           25 + 70 * done // len(rows), 100,
                                           stage=f"Writing {done:,} of {len(rows):,} rows"))
    imp.imported, imp.deleted = imported, deleted
    bump_version(sheet.id)
    skipped = f"; {len(errors):,} bad lines left out" if errors else ""
    gone = f", {deleted:,} removed" if deleted else ""
    return _finish(imp, "done", f"{len(rows):,} rows imported ({imported:,} new or changed{gone}){skipped}.")


def _finish(imp: RateImport, status: str, message: str) -> dict:
    imp.status, imp.message, imp.content, imp.finished_at = status, message[:255], None, utcnow()
    db.session.flush()
    return {"status": status, "lines": imp.lines, "imported": imp.imported, "deleted": imp.deleted,
            "errors": imp.error_count, "message": imp.message}


def _dedupe(result) -> list:
    """A line without a date and a line dated 2000-01-01 are the same DB row ("always"), which
    parse_deck cannot know (it already reports every other repeated prefix): the later is reported."""
    from app.rating.deck import DeckError

    dated = {r.tariff.prefix: r.line for r in result.rows if r.effective_from == DEFAULT_EFFECTIVE}
    if not dated:
        return result.rows
    undated = {r.tariff.prefix: r.line for r in result.rows if r.effective_from is None and r.tariff.prefix in dated}
    if not undated:
        return result.rows
    later = {max(dated[p], undated[p]) for p in undated}
    for p in undated:
        line = max(dated[p], undated[p])
        result.errors.append(DeckError(line, f"prefix {p} effective {DEFAULT_EFFECTIVE.isoformat()} "
                                             f"is already on line {min(dated[p], undated[p])}"))
    return [r for r in result.rows if r.line not in later]


_COLUMNS = ("prefix", "country", "description", "rate_per_minute", "connect_fee", "first_block", "increment",
            "minimum_charge", "effective_from")
_PG_TYPES = ("varchar", "varchar", "varchar", "numeric", "numeric", "int4", "int4", "numeric", "date")


def write_rows(sheet, rows, mode: str = "merge", progress=None) -> tuple[int, int]:
    """Upsert DeckRows into the sheet (replace: and delete the rows the deck does not name).
    Returns (rows inserted or changed, rows deleted). Flushes, never commits."""
    session = db.session
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        return _write_pg(session, sheet, rows, mode, progress)
    return _write_generic(session, sheet, rows, mode, progress)


def _tuples(rows):
    for r in rows:
        t = r.tariff
        yield (t.prefix, t.country, t.description, t.rate_per_minute, t.connect_fee, t.first_block, t.increment,
               t.minimum_charge, r.effective_from or DEFAULT_EFFECTIVE)


def _write_pg(session, sheet, rows, mode, progress):
    session.execute(text(
        "CREATE TEMP TABLE IF NOT EXISTS rate_import_rows (prefix varchar(20), country varchar(2),"
        " description varchar(120), rate_per_minute numeric(14,6), connect_fee numeric(14,6), first_block integer,"
        " increment integer, minimum_charge numeric(14,6), effective_from date) ON COMMIT DROP"))
    session.execute(text("TRUNCATE rate_import_rows"))
    copy_rows(session, "rate_import_rows", tuple(zip(_COLUMNS, _PG_TYPES)), _tuples(rows),
              progress=(lambda done: progress(done * 3 // 4)) if progress else None, every=COPY_CHUNK)
    session.execute(text("ANALYZE rate_import_rows"))
    if progress:
        progress(len(rows) * 3 // 4)
    params = {"tenant_id": sheet.tenant_id, "sheet_id": sheet.id}
    # The sheet row is locked (its version moves at the end anyway): imports into one sheet take
    # turns, so an empty sheet stays empty until this INSERT, which then needs no conflict checks.
    session.execute(text("SELECT 1 FROM rate_sheets WHERE id = :sheet_id FOR UPDATE"), params)
    empty = not session.execute(text("SELECT EXISTS (SELECT 1 FROM rates WHERE rate_sheet_id = :sheet_id)"),
                                params).scalar()
    insert = ("INSERT INTO rates (tenant_id, rate_sheet_id, prefix, country, description, rate_per_minute,"
              " connect_fee, first_block, increment, minimum_charge, effective_from)"
              " SELECT :tenant_id, :sheet_id, t.prefix, t.country, t.description, t.rate_per_minute, t.connect_fee,"
              " t.first_block, t.increment, t.minimum_charge, t.effective_from FROM rate_import_rows t")
    in_order = " ORDER BY t.prefix, t.effective_from"     # in index order: the b-trees fill in order
    if empty:
        # A new sheet (the usual first import): a plain INSERT, without speculative insertion.
        changed = session.execute(text(insert + in_order), params).rowcount
    else:
        # Only new or changed rows reach the INSERT (a hash join finds them; unchanged rows of a
        # re-import are neither rewritten nor locked).
        changed = session.execute(text(
            insert + " LEFT JOIN rates r ON r.rate_sheet_id = :sheet_id AND r.prefix = t.prefix"
            " AND r.effective_from = t.effective_from"
            " WHERE r.id IS NULL OR (r.country, r.description, r.rate_per_minute, r.connect_fee, r.first_block,"
            " r.increment, r.minimum_charge) IS DISTINCT FROM (t.country, t.description, t.rate_per_minute,"
            " t.connect_fee, t.first_block, t.increment, t.minimum_charge)"
            + in_order + " ON CONFLICT (rate_sheet_id, prefix, effective_from) DO UPDATE SET"
            " country = excluded.country, description = excluded.description,"
            " rate_per_minute = excluded.rate_per_minute, connect_fee = excluded.connect_fee,"
            " first_block = excluded.first_block, increment = excluded.increment,"
            " minimum_charge = excluded.minimum_charge"), params).rowcount
    deleted = 0
    if mode == "replace" and not empty:
        deleted = session.execute(text(
            "DELETE FROM rates r WHERE r.rate_sheet_id = :sheet_id AND NOT EXISTS (SELECT 1 FROM rate_import_rows t"
            " WHERE t.prefix = r.prefix AND t.effective_from = r.effective_from)"), params).rowcount
    session.execute(text("DROP TABLE rate_import_rows"))
    if progress:
        progress(len(rows))
    return changed, deleted


def _write_generic(session, sheet, rows, mode, progress):
    from app.rating.models import Rate

    table = Rate.__table__
    existing = {(p, e): tuple(v) for p, e, *v in session.execute(
        select(table.c.prefix, table.c.effective_from, *[table.c[c] for c in _COLUMNS[1:8]])
        .where(table.c.rate_sheet_id == sheet.id))}
    batch, changed, done = [], 0, 0
    wanted = set()
    for values in _tuples(rows):
        key = (values[0], values[8])
        wanted.add(key)
        if existing.get(key) == tuple(values[1:8]):
            continue
        batch.append(dict(zip(_COLUMNS, values), tenant_id=sheet.tenant_id, rate_sheet_id=sheet.id))
        if len(batch) >= COPY_CHUNK:
            changed += _upsert(session, table, batch)
            done += len(batch)
            batch = []
            if progress:
                progress(min(done, len(rows)))
    changed += _upsert(session, table, batch)
    deleted = 0
    if mode == "replace":
        gone = [k for k in existing if k not in wanted]
        for i in range(0, len(gone), 500):
            chunk = gone[i:i + 500]
            deleted += session.execute(delete(table).where(
                table.c.rate_sheet_id == sheet.id,
                tuple_(table.c.prefix, table.c.effective_from).in_(chunk))).rowcount
    if progress:
        progress(len(rows))
    return changed, deleted


def _upsert(session, table, batch) -> int:
    if not batch:
        return 0
    stmt = sqlite.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["rate_sheet_id", "prefix", "effective_from"],
        set_={c: stmt.excluded[c] for c in _COLUMNS[1:8]})
    session.connection().execute(stmt, batch)
    return len(batch)


# -- export ----------------------------------------------------------------------------------
def export_page(sheet_id: int, after=None, chunk: int = 5000) -> tuple[str, tuple | None]:
    """One piece of a sheet's export: CSV text (with the header when `after` is None) of the
    next `chunk` rows after the key `after`, and the key to continue from (None: the end).

    The caller has loaded the sheet through the tenant scope; the rows are then read by the
    sheet's id with a Core select (half the cost of an ORM one on a 170,000-row sheet), a page
    at a time by (prefix, effective_from), so no cursor stays open while a piece is sent."""
    from app.rating.cost import Tariff
    from app.rating.deck import DeckRow, export_deck
    from app.rating.models import Rate

    t = Rate.__table__
    q = (select(t.c.prefix, t.c.country, t.c.description, t.c.rate_per_minute, t.c.connect_fee, t.c.first_block,
                t.c.increment, t.c.minimum_charge, t.c.effective_from)
         .where(t.c.rate_sheet_id == sheet_id).order_by(t.c.prefix, t.c.effective_from).limit(chunk))
    if after is not None:
        q = q.where(tuple_(t.c.prefix, t.c.effective_from) > tuple_(*after))
    part = db.session.execute(q).all()
    text_ = export_deck([DeckRow(0, Tariff(*r[:8]), r[8]) for r in part])
    if after is not None:
        text_ = text_.split("\r\n", 1)[1]
    return text_, ((part[-1][0], part[-1][8]) if len(part) == chunk else None)


def export_chunks(sheet_id: int, chunk: int = 5000):
    """The whole sheet (every effective date) as CSV text pieces, via deck.export_deck."""
    text_, after = export_page(sheet_id, None, chunk)
    yield text_
    while after is not None:
        text_, after = export_page(sheet_id, after, chunk)
        yield text_
