"""The calls browser: every call of the scope, filtered, newest first, in keyset pages.

Shaped for millions of calls (bench/calls_browser.py measures it at 1,000,000):

* A page is found by keyset, never OFFSET: newest first on (started_at, id), the next page
  starts after the last row's key (`older=<cursor>`), the previous one before the first's
  (`newer=<cursor>`). Page 500 costs what page 1 costs.
* The scope is one or more tenants (a reseller and its sub-resellers; every tenant for the
  platform admin). Each tenant's calls are one range of `ix_calls_tenant_started`
  (tenant_id, started_at, id): the page is the merge of one LIMITed range scan per tenant
  (PostgreSQL: a LATERAL join over the tenant ids, one statement of constant shape; SQLite: a
  UNION ALL of one branch per tenant), then the first rows of the merge, so a small reseller
  beside a big one reads about its own rows. An account filter uses `ix_calls_account_started` alone.
* ASR and ACD are one aggregate over the whole filter (not the page):
  ASR = answered / attempted calls, ACD = average billsec of the answered calls, where a call
  is answered when its disposition is ANSWERED or it has billable seconds.
* The CSV export walks the same keyset, oldest first, `EXPORT_BATCH` rows per query: the
  caller streams each batch's text, so no more than one batch is ever in memory.

Dates are UTC calendar days, as in the call reports (a range includes both its days). Bad
typed input (a date range ending before it starts, an unknown account, a destination that
is neither digits nor a country code) is an error next to its field and lists nothing;
a select outside its choices or a stale cursor falls back and says so (`notices`).
Every statement goes through the tenant scope (tenants/scope.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Integer, and_, any_, bindparam, case, func, or_, select, true, tuple_, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from app.accounts.models import Account
from app.calls.models import Call
from app.extensions import db
from tenants.models import Tenant
from tenants.scope import current_scope

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
EXPORT_BATCH = 5000
MAX_DAYS = 366

DISPOSITIONS = {"": "Any disposition", "ANSWERED": "Answered", "NO ANSWER": "No answer", "BUSY": "Busy",
                "FAILED": "Failed", "CONGESTION": "Congestion"}
RATING_FILTERS = {"": "Rated or not", "rated": "Rated", "unrated": "Not rated yet",
                  "error": "Rating error", "needs_rating": "Unrated or rating error"}

_CURSOR = re.compile(r"^(\d{8}T\d{12})-(\d{1,10})$")
_DIGITS = re.compile(r"^\+?\d{1,20}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def answered_clause():
    return or_(Call.disposition == "ANSWERED", Call.billsec > 0)


def needs_rating_clause():
    """Calls a re-rate may change: not rated yet, or rated with an error (which charged nothing)."""
    return or_(Call.rated_at.is_(None), Call.rating_error != "")


def encode_cursor(started_at: datetime, call_id: int) -> str:
    return f"{started_at:%Y%m%dT%H%M%S%f}-{call_id}"


def decode_cursor(raw: str) -> tuple[datetime, int] | None:
    m = _CURSOR.match(raw or "")
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S%f"), int(m.group(2))
    except ValueError:
        return None


def default_range(today: date | None = None) -> tuple[date, date]:
    from datetime import timezone

    today = today or datetime.now(timezone.utc).date()
    return today.replace(day=1), today


@dataclass(frozen=True)
class CallQuery:
    """What the browser shows, parsed from the query string.

    `errors` (field -> message) make the query unusable: nothing is listed until fixed.
    `notices` explain a fallback that still lists something."""
    start: date
    end: date                 # inclusive
    account: str = ""         # an account number, as typed
    reseller: int = 0         # a tenant of the scope (with its sub-resellers); 0 = all
    destination: str = ""     # digits: the dialled number starts with them; two letters: rated country
    disposition: str = ""
    rating: str = ""
    size: int = DEFAULT_PAGE_SIZE
    older: tuple[datetime, int] | None = None     # the page after this key (newest first)
    newer: tuple[datetime, int] | None = None     # the page before this key
    raw: dict = field(default_factory=dict, compare=False)     # typed values to show back
    errors: dict = field(default_factory=dict, compare=False)
    notices: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args, today: date | None = None) -> "CallQuery":
        errors: dict[str, str] = {}
        notices: list[str] = []
        raw = {k: (args.get(k) or "").strip()[:40] for k in ("from", "to", "account", "destination")}

        start, end = default_range(today)
        dates = {}
        for name, fallback in (("from", start), ("to", end)):
            if not raw[name]:
                dates[name] = fallback
                continue
            try:
                dates[name] = date.fromisoformat(raw[name])
            except ValueError:
                errors[name] = f"“{raw[name][:20]}” is not a date: use YYYY-MM-DD."
        if not errors:
            if dates["to"] < dates["from"]:
                errors["to"] = "The end date is before the start date."
            elif (dates["to"] - dates["from"]).days >= MAX_DAYS:
                errors["to"] = f"Choose at most {MAX_DAYS} days."
        start, end = dates.get("from", start), dates.get("to", end)

        account = raw["account"]
        if account and not account.isdigit():
            errors["account"] = "Type an account number (digits only)."

        destination = raw["destination"].replace(" ", "")
        if destination and not (_DIGITS.match(destination) or _COUNTRY.match(destination)):
            errors["destination"] = ("Type the first digits of the dialled number (e.g. 33) "
                                     "or a two-letter country code (e.g. FR).")
        elif _COUNTRY.match(destination):
            destination = destination.upper()

        reseller = 0
        raw_reseller = (args.get("reseller") or "").strip()
        if raw_reseller:
            try:
                reseller = int(raw_reseller)
            except ValueError:
                reseller = -1
            if not 0 < reseller < 2**31:
                errors["reseller"] = "Choose a reseller from the list."
                reseller = 0

        disposition = args.get("disposition") or ""
        if disposition not in DISPOSITIONS:
            notices.append("Unknown disposition ignored; showing every disposition.")
            disposition = ""
        rating = args.get("rating") or ""
        if rating not in RATING_FILTERS:
            notices.append("Unknown rating filter ignored; showing rated and unrated calls.")
            rating = ""

        size = DEFAULT_PAGE_SIZE
        raw_size = (args.get("size") or "").strip()
        if raw_size:
            try:
                size = int(raw_size)
            except ValueError:
                size = 0
            if size not in PAGE_SIZES:
                fit = min((s for s in PAGE_SIZES if s >= size), default=PAGE_SIZES[-1]) if size > 0 else \
                    DEFAULT_PAGE_SIZE
                notices.append(f"Page size must be one of {', '.join(map(str, PAGE_SIZES))}; showing {fit}.")
                size = fit

        older = newer = None
        for name in ("older", "newer"):
            value = (args.get(name) or "").strip()
            if not value:
                continue
            key = decode_cursor(value)
            if key is None:
                notices.append("That page link is not valid any more; showing the newest calls.")
                older = newer = None
                break
            if name == "older":
                older = key
            else:
                newer = key
        if older and newer:
            newer = None
        return cls(start=start, end=end, account=account if "account" not in errors else "",
                   reseller=reseller, destination=destination if "destination" not in errors else "",
                   disposition=disposition, rating=rating, size=size, older=older, newer=newer,
                   raw=raw, errors=errors, notices=tuple(notices))

    def filter_args(self) -> dict:
        """The filter as query-string arguments (no page position), defaults left out."""
        out = {"from": self.start.isoformat(), "to": self.end.isoformat(), "account": self.account,
               "reseller": self.reseller or "", "destination": self.destination,
               "disposition": self.disposition, "rating": self.rating,
               "size": self.size if self.size != DEFAULT_PAGE_SIZE else ""}
        return {k: v for k, v in out.items() if v not in ("", None)}

    def args(self, **changes) -> dict:
        """Arguments for a link: the filter plus a page position (older=/newer= cursor strings)."""
        out = self.filter_args()
        out.update({k: v for k, v in changes.items() if v})
        return out

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        from datetime import timedelta

        return (datetime.combine(self.start, datetime.min.time()),
                datetime.combine(self.end + timedelta(days=1), datetime.min.time()))

    @property
    def first_page(self) -> bool:
        return self.older is None and self.newer is None


class FilterError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Resolved:
    """A query's ids, looked up in the scope: the account, the tenants to merge."""
    account_id: int | None
    tenant_ids: tuple[int, ...]


def resolve(cq: CallQuery) -> Resolved:
    """The account and tenants the filter names, in the current scope; FilterError if unknown."""
    account_id = None
    if cq.account:
        account_id = db.session.execute(
            select(Account.id).where(Account.account_number == cq.account)).scalar_one_or_none()
        if account_id is None:
            raise FilterError("account", f"No account numbered {cq.account} here.")
    scope = current_scope()
    if cq.reseller:
        path = db.session.execute(select(Tenant.path).where(Tenant.id == cq.reseller)).scalar_one_or_none()
        if path is None:
            raise FilterError("reseller", "Choose a reseller from the list.")
        ids = db.session.execute(select(Tenant.id).where(Tenant.path.like(path + "%"))).scalars().all()
    elif scope.tenant_ids is not None:
        ids = scope.tenant_ids
    else:
        ids = db.session.execute(select(Tenant.id)).scalars().all()
    return Resolved(account_id, tuple(sorted(ids)))


def where_clauses(cq: CallQuery, resolved: Resolved) -> list:
    start, end = cq.bounds
    clauses = [Call.started_at >= start, Call.started_at < end]
    if cq.reseller:             # narrower than the scope, which the scope hook adds to every statement
        clauses.append(Call.tenant_id.in_(resolved.tenant_ids))
    if resolved.account_id is not None:
        clauses.append(Call.account_id == resolved.account_id)
    if cq.destination:
        if cq.destination.isalpha():
            clauses.append(Call.country == cq.destination)
        else:
            digits = cq.destination.lstrip("+")
            clauses.append(or_(Call.destination.startswith(digits, autoescape=True),
                               Call.destination.startswith("+" + digits, autoescape=True)))
    if cq.disposition:
        clauses.append(Call.disposition == cq.disposition)
    if cq.rating == "rated":
        clauses.append(and_(Call.rated_at.is_not(None), Call.rating_error == ""))
    elif cq.rating == "unrated":
        clauses.append(Call.rated_at.is_(None))
    elif cq.rating == "error":
        clauses.append(Call.rating_error != "")
    elif cq.rating == "needs_rating":
        clauses.append(needs_rating_clause())
    return clauses


def _keys(clauses, resolved: Resolved, *, after=None, before=None, ascending=False, limit: int,
          rare: bool = False) -> list[tuple]:
    """(started_at, id) of up to `limit` calls past the cursor, merged over the tenants.

    `rare`: the filter keeps few calls (not rated yet, rating error: each has a partial index),
    so one statement over the whole scope lets the database start from those indexes instead
    of walking every tenant's range for the few matches."""
    order = (Call.started_at.asc(), Call.id.asc()) if ascending else (Call.started_at.desc(), Call.id.desc())
    keyset = []
    if after is not None:       # newest first: the rows older than this key
        keyset.append(tuple_(Call.started_at, Call.id) < tuple_(*after))
    if before is not None:      # the rows newer than this key
        keyset.append(tuple_(Call.started_at, Call.id) > tuple_(*before))

    def branch(*extra):
        return select(Call.started_at, Call.id).where(*clauses, *keyset, *extra).order_by(*order).limit(limit)

    if not resolved.tenant_ids:
        return []
    if resolved.account_id is not None or len(resolved.tenant_ids) == 1 or rare:
        # One range (an account's, or the only tenant's), or a rare filter: one statement.
        tenant = [Call.tenant_id == resolved.tenant_ids[0]] if len(resolved.tenant_ids) == 1 else []
        return [tuple(r) for r in db.session.execute(branch(*tenant))]
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement of constant shape however many tenants (compiled once, cached): per
        # tenant id a LATERAL range scan of ix_calls_tenant_started, LIMITed; then the first rows.
        tenants = func.unnest(bindparam("tenant_ids", list(resolved.tenant_ids), type_=ARRAY(Integer))) \
            .table_valued("tenant_id").render_derived(name="t")
        per_tenant = branch(Call.tenant_id == tenants.c.tenant_id).lateral("k")
        merged = select(per_tenant.c.started_at, per_tenant.c.id).select_from(tenants).join(per_tenant, true())
        cols = per_tenant.c
    else:
        # SQLite (the embedded default): the same as a UNION ALL of one LIMITed branch per tenant.
        cols = union_all(*(select(branch(Call.tenant_id == t).subquery().c) for t in resolved.tenant_ids)).subquery()
        merged = select(cols.c.started_at, cols.c.id)
        cols = cols.c
    merged_order = (cols.started_at.asc(), cols.id.asc()) if ascending else (cols.started_at.desc(), cols.id.desc())
    return [tuple(r) for r in db.session.execute(merged.order_by(*merged_order).limit(limit))]


LISTED = (Call.id, Call.tenant_id, Call.account_id, Call.started_at, Call.answered_at, Call.extension,
          Call.destination, Call.country, Call.disposition, Call.billsec, Call.charged_seconds,
          Call.bundle_seconds, Call.cost, Call.rated_at, Call.rating_error, Call.server, Call.uniqueid,
          Account.account_number, Account.name.label("account_name"), Account.currency,
          Tenant.name.label("reseller"))


def load_rows(ids: list[int]) -> list:
    """The listed columns of these calls, in the order given (plain rows, not ORM objects)."""
    if not ids:
        return []
    if db.session.get_bind().dialect.name == "postgresql":
        wanted = Call.id == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))   # one parameter
    else:
        wanted = Call.id.in_(ids)
    by_id = {r.id: r for r in db.session.execute(
        select(*LISTED).select_from(Call).join(Account, Account.id == Call.account_id)
        .join(Tenant, Tenant.id == Call.tenant_id).where(wanted))}
    return [by_id[i] for i in ids if i in by_id]


def _rare(cq: CallQuery) -> bool:
    return cq.rating in ("unrated", "error", "needs_rating")


@dataclass
class Page:
    query: CallQuery
    rows: list
    newer: str | None = None      # cursor of the page before (newer calls), None on the first page
    older: str | None = None      # cursor of the page after (older calls)


def page(cq: CallQuery, resolved: Resolved) -> Page:
    clauses = where_clauses(cq, resolved)
    n = cq.size + 1
    if cq.newer is not None:
        keys = _keys(clauses, resolved, before=cq.newer, ascending=True, limit=n, rare=_rare(cq))
        more_newer = len(keys) > cq.size
        keys = list(reversed(keys[:cq.size]))
        if not keys:       # nothing newer any more: the first page
            return page(replace(cq, newer=None), resolved)
        more_older = True
    else:
        keys = _keys(clauses, resolved, after=cq.older, limit=n, rare=_rare(cq))
        more_older = len(keys) > cq.size
        keys = keys[:cq.size]
        more_newer = cq.older is not None
    rows = load_rows([k[1] for k in keys])
    return Page(cq, rows,
                newer=encode_cursor(*keys[0]) if keys and more_newer else None,
                older=encode_cursor(*keys[-1]) if keys and more_older else None)


@dataclass
class Figures:
    """ASR and ACD (and the counts behind them) of every call matching the filter."""
    attempts: int = 0
    answered: int = 0
    answered_seconds: int = 0
    unrated: int = 0
    errors: int = 0

    @property
    def asr(self) -> Decimal | None:
        """Answer-seizure ratio in percent (one decimal), None without calls."""
        if not self.attempts:
            return None
        return (Decimal(100 * self.answered) / self.attempts).quantize(Decimal("0.1"))

    @property
    def acd_seconds(self) -> int | None:
        """Average call duration of the answered calls, whole seconds (rounded half up)."""
        if not self.answered:
            return None
        return int((Decimal(self.answered_seconds) / self.answered).quantize(Decimal(1), rounding="ROUND_HALF_UP"))

    @property
    def needs_rating(self) -> int:
        return self.unrated + self.errors


def figures(cq: CallQuery, resolved: Resolved) -> Figures:
    """One aggregate query over the whole filter."""
    answered = answered_clause()
    row = db.session.execute(
        select(func.count(),
               func.count(case((answered, 1))),
               func.coalesce(func.sum(case((answered, Call.billsec), else_=0)), 0),
               func.count(case((Call.rated_at.is_(None), 1))),
               func.count(case((Call.rating_error != "", 1))))
        .where(*where_clauses(cq, resolved))).one()
    return Figures(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))


# -- CSV ------------------------------------------------------------------------------------------
CSV_HEADER = ("call_id", "started_at_utc", "answered_at_utc", "reseller", "account_number", "account_name",
              "extension", "destination", "country", "disposition", "billsec", "charged_seconds",
              "bundle_seconds", "cost", "currency", "rating", "rating_error", "server", "uniqueid")


def csv_header() -> str:
    return _csv_text([CSV_HEADER])


def export_batch(cq: CallQuery, resolved: Resolved, after: tuple[datetime, int] | None,
                 limit: int = EXPORT_BATCH) -> tuple[str, tuple[datetime, int] | None]:
    """One batch of the export, oldest first: (CSV text, the key to continue after, or None)."""
    keys = _keys(where_clauses(cq, resolved), resolved, before=after, ascending=True, limit=limit, rare=_rare(cq))
    rows = load_rows([k[1] for k in keys])
    # Rows unpacked, not read by attribute (a Row's attribute goes through a failed type lookup
    # first, and the export reads a million of them).
    text = _csv_text(
        (call_id, started.isoformat(sep=" "), answered.isoformat(sep=" ") if answered else "",
         _safe_cell(reseller), number, _safe_cell(name), extension, destination, country, disposition,
         billsec, charged, bundle, "" if cost is None else str(cost), currency,
         "unrated" if rated_at is None else "error" if error else "rated", error, server, uniqueid)
        for (call_id, _, _, started, answered, extension, destination, country, disposition, billsec, charged,
             bundle, cost, rated_at, error, server, uniqueid, number, name, currency, reseller) in rows)
    return text, (keys[-1] if len(keys) == limit else None)


def _csv_text(rows) -> str:
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        w.writerow(row)
    return out.getvalue()


def _safe_cell(value):
    """Typed names a spreadsheet would run as a formula get a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def resellers_of_scope() -> list[tuple[int, str, int]]:
    """(tenant id, name, depth) of the scope's tenants, for the reseller filter."""
    rows = db.session.execute(select(Tenant.id, Tenant.name, Tenant.path).order_by(Tenant.path)).all()
    return [(r.id, r.name, r.path.count("/") - 2) for r in rows]
