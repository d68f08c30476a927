"""The reseller's account list: query parsing, search, filters, sorting, paging, bulk status.

Shaped for 100,000+ accounts (bench/accounts_list.py measures it):

* Search is one box, a case-insensitive *starts with* on name, company, email or account
  number. Each of the four is a prefix range on its own index (the generated lower-case
  `*_key` columns, pattern ops on PostgreSQL so it works under any collation), combined by a
  bitmap OR. A *contains* search cannot use a portable index and scans every account of the
  scope per keystroke.
* A search is filtered first and sorted second (a materialised CTE), never found by walking
  the sort index.
* A page is chosen on `accounts` alone (ids only, ORDER BY sort column then id, LIMIT/OFFSET);
  only the <= 100 rows of that page are then loaded with their plan users and counts, so the
  per-account counts never run over the whole table.
* The total is one `COUNT(*)` on `accounts` with the same WHERE: no join, no ORDER BY, and
  it stops at COUNT_CAP. Past that the list says "more than 10,000" and pages on with one
  extra id per page to know whether a next page exists; the last page gives the exact total.
* Every input is whitelisted or clamped; anything odd falls back and says so in `notices`.

The scoping hook (tenants/scope.py) filters every statement here by the current tenant
scope, so a reseller sees its own and its sub-resellers' accounts and nothing else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sqlalchemy import func, or_, select

from app.accounts.models import BILLING_TYPES, STATUSES, Account
from app.billing.models import ServicePlan
from app.extensions import db
from app.numbers.models import Number
from provisioning.models import Extension
from tenants.models import Tenant

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
MAX_QUERY_LENGTH = 100
MAX_BULK_IDS = 1000
# The total is counted exactly up to here; beyond, the list says "more than 10,000" (a
# COUNT(*) over 60,000 rows visits the heap wherever balance updates un-marked pages).
COUNT_CAP = 10_000
COLUMNS_PREFERENCE = "reseller.accounts.columns"

# Status filter: "" = every status; the two groups from the seed, then each status.
STATUS_FILTERS = {
    "": "All statuses",
    "all_active": "All active",
    "all_inactive": "All inactive",
    **{s: s.capitalize() for s in STATUSES},
}
INACTIVE = tuple(s for s in STATUSES if s != "active")
TERMS_FILTERS = {"": "All terms", **{t: t.capitalize() for t in BILLING_TYPES}}

# Counted children shown as columns: key -> (model with an account_id, heading, shown by
# default). A further count is one more line here: the list, the sort and the column
# chooser pick it up.
COUNTED = {
    "numbers": (Number, "Numbers", True),         # DIDs assigned to the account
    "extensions": (Extension, "Extensions", False),
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = False
    default: bool = True      # shown until the login chooses otherwise
    hideable: bool = True
    sortable: bool = True     # False: not a database column (live calls come from Redis)


COLUMNS: tuple[Column, ...] = (
    Column("number", "Account number", hideable=False),
    Column("name", "Name"),
    Column("company", "Company"),
    Column("email", "Email", default=False),
    Column("reseller", "Reseller", default=False),
    Column("terms", "Terms"),
    Column("balance", "Balance", numeric=True),
    Column("credit_limit", "Credit limit", numeric=True),
    Column("users", "Users", numeric=True),
    *(Column(key, heading, numeric=True, default=shown) for key, (_, heading, shown) in COUNTED.items()),
    Column("in_use", "In use", numeric=True, sortable=False),   # live calls, kept fresh by polling
    Column("status", "Status"),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SORT_KEYS = tuple(c.key for c in COLUMNS if c.sortable)
DEFAULT_SORT = "name"
SIMPLE_SORT = {
    "number": Account.account_number, "name": Account.name, "company": Account.company,
    "email": Account.email, "terms": Account.billing_type, "balance": Account.balance,
    "credit_limit": Account.credit_limit, "status": Account.status,
}


def default_columns(multi_tenant: bool) -> list[str]:
    """Columns shown until the login chooses: the reseller's name too when sub-resellers exist."""
    return [c.key for c in COLUMNS if c.default or (c.key == "reseller" and multi_tenant)]


def visible_columns(chosen, multi_tenant: bool) -> list[str]:
    """A stored choice cleaned against today's columns (a removed column is dropped)."""
    if not isinstance(chosen, list):
        return default_columns(multi_tenant)
    keep = {c for c in chosen if isinstance(c, str)}
    return [c.key for c in COLUMNS if c.key in keep or not c.hideable]


def _count_subquery(model):
    """Correlated COUNT of `model` rows of the outer account: cheap for a page of ids."""
    return (select(func.count(model.id)).where(model.account_id == Account.id)
            .correlate(Account).scalar_subquery())


def _with_sort_key(stmt, key: str, *, few_rows: bool):
    """Add the join a sort key needs and return (statement, key expression).

    `few_rows`: the statement selects a small set (a search), so a per-row correlated count
    is cheaper than counting every child row of the scope in one grouped join.
    """
    if key in SIMPLE_SORT:
        return stmt, SIMPLE_SORT[key]
    if key == "users":
        return stmt.outerjoin(ServicePlan, ServicePlan.account_id == Account.id), func.coalesce(ServicePlan.users, 0)
    if key == "reseller":
        return stmt.join(Tenant, Tenant.id == Account.tenant_id), Tenant.name
    if key in COUNTED:
        model = COUNTED[key][0]
        if few_rows:
            return stmt, _count_subquery(model)
        counts = (select(model.account_id.label("account_id"), func.count(model.id).label("n"))
                  .where(model.account_id.is_not(None)).group_by(model.account_id).subquery())
        return stmt.outerjoin(counts, counts.c.account_id == Account.id), func.coalesce(counts.c.n, 0)
    raise KeyError(key)


@dataclass(frozen=True)
class ListQuery:
    """What the list shows, parsed from the query string; `notices` explain any fallback."""
    q: str = ""
    status: str = ""
    terms: str = ""
    group: int = 0            # a customer group of the reseller (app/accounts/details.py); 0 = any
    sort: str = DEFAULT_SORT
    direction: str = "asc"
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    notices: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args) -> "ListQuery":
        notices: list[str] = []

        q = " ".join((args.get("q") or "").replace("\x00", "").split())
        if len(q) > MAX_QUERY_LENGTH:
            q = q[:MAX_QUERY_LENGTH]
            notices.append(f"The search was cut to its first {MAX_QUERY_LENGTH} characters.")

        status = args.get("status", "") or ""
        if status not in STATUS_FILTERS:
            notices.append("Unknown status filter ignored; showing every status.")
            status = ""
        terms = args.get("terms", "") or ""
        if terms not in TERMS_FILTERS:
            notices.append("Unknown terms filter ignored; showing prepaid and postpaid.")
            terms = ""
        try:
            group = max(int(args.get("group", "") or 0), 0)
        except ValueError:
            notices.append("Unknown group ignored; showing every group.")
            group = 0

        sort = args.get("sort", "") or DEFAULT_SORT
        if sort not in SORT_KEYS:
            notices.append("Cannot sort by that; sorted by name instead.")
            sort = DEFAULT_SORT
        direction = (args.get("dir", "") or "asc").lower()
        if direction not in ("asc", "desc"):
            notices.append("Sort direction must be asc or desc; using asc.")
            direction = "asc"

        size = DEFAULT_PAGE_SIZE
        raw_size = (args.get("size", "") or "").strip()
        if raw_size:
            try:
                size = int(raw_size)
            except ValueError:
                notices.append(f"Page size must be one of {_sizes()}; showing {DEFAULT_PAGE_SIZE}.")
                size = DEFAULT_PAGE_SIZE
            else:
                if size > PAGE_SIZES[-1]:
                    notices.append(f"At most {PAGE_SIZES[-1]} accounts fit on a page; showing {PAGE_SIZES[-1]}.")
                    size = PAGE_SIZES[-1]
                elif size not in PAGE_SIZES:
                    fit = min((s for s in PAGE_SIZES if s >= size), default=DEFAULT_PAGE_SIZE)
                    notices.append(f"Page size must be one of {_sizes()}; showing {fit}.")
                    size = fit

        page = 1
        raw_page = (args.get("page", "") or "").strip()
        if raw_page:
            try:
                page = int(raw_page)
            except ValueError:
                notices.append("Page must be a number; showing page 1.")
                page = 1
            else:
                if page < 1:
                    notices.append("Pages start at 1; showing page 1.")
                    page = 1
        return cls(q=q, status=status, terms=terms, group=group, sort=sort, direction=direction, page=page,
                   size=size, notices=tuple(notices))

    def args(self, **changes) -> dict:
        """Query-string arguments for a link, leaving out defaults to keep URLs short."""
        lq = replace(self, **changes)
        out = {"q": lq.q, "status": lq.status, "terms": lq.terms, "group": lq.group or ""}
        if lq.sort != DEFAULT_SORT or lq.direction != "asc":
            out["sort"], out["dir"] = lq.sort, lq.direction
        if lq.size != DEFAULT_PAGE_SIZE:
            out["size"] = lq.size
        if lq.page != 1:
            out["page"] = lq.page
        return {k: v for k, v in out.items() if v not in ("", None)}

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.status or self.terms or self.group)


def _sizes() -> str:
    return ", ".join(map(str, PAGE_SIZES))


def like_prefix(text: str) -> str:
    """A LIKE pattern matching values that start with `text` (wildcards in it are literal)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# From this many characters a search matches any part of name, company and email (trigram
# GIN indexes serve it on PostgreSQL); shorter, it matches their start (the prefix indexes),
# since one or two letters are inside almost every name.
CONTAINS_FROM = 3


def search_clause(q: str):
    """Case-insensitive: any part of name, company or email (their start for a query shorter
    than CONTAINS_FROM), or the start of the account number.

    The keys are the generated lower-case columns (Account.*_key); the pattern is lowered by
    the database too, so both sides use the same case rules. SQLite has no trigram index:
    the same LIKE scans there.
    """
    typed = q.strip()
    anywhere = len(typed) >= CONTAINS_FROM
    pattern = func.lower(("%" + like_prefix(typed)) if anywhere else like_prefix(typed))
    return or_(
        Account.name_key.like(pattern, escape="\\"),
        Account.company_key.like(pattern, escape="\\"),
        Account.email_key.like(pattern, escape="\\"),
        Account.account_number.like(like_prefix(typed), escape="\\"),
    )


def where_clauses(lq: ListQuery) -> list:
    clauses = []
    if lq.q:
        clauses.append(search_clause(lq.q))
    if lq.status == "all_active":
        clauses.append(Account.status == "active")
    elif lq.status == "all_inactive":
        clauses.append(Account.status.in_(INACTIVE))
    elif lq.status:
        clauses.append(Account.status == lq.status)
    if lq.terms:
        clauses.append(Account.billing_type == lq.terms)
    if lq.group:
        from app.accounts.details import AccountDetails

        clauses.append(Account.id.in_(select(AccountDetails.account_id).where(AccountDetails.group_id == lq.group)))
    return clauses


def count_accounts(clauses, cap: int | None = None) -> int:
    """How many accounts match: one COUNT(*) over `accounts` alone (the scope hook adds the
    tenant filter). With `cap`, stop counting after cap + 1 rows.

    COUNT(*), not COUNT(id): it needs no column, so it can be an index-only scan of the small
    tenant_id index. Index-only scans still visit the heap for pages not marked all-visible,
    and balance updates keep un-marking them; the cap bounds that cost for large scopes.
    """
    stmt = select(Account.id).where(*clauses)
    if cap is not None:
        stmt = stmt.limit(cap + 1)
    return db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()


def page_ids(lq: ListQuery, clauses, offset: int, limit: int | None = None) -> list[int]:
    """The ids of one page, in order, chosen on `accounts` (plus the join a sort needs)."""
    stmt, key = _with_sort_key(select(Account.id.label("id")), lq.sort, few_rows=bool(lq.q))
    stmt = stmt.add_columns(key.label("sort_key")).where(*clauses)
    if lq.q:
        # Filter first, then sort. A search matches rows scattered over the sort order; walking
        # the sort index until enough of them turn up is the plan PostgreSQL picks for
        # ORDER BY ... LIMIT, and it reads most of the index for a rare match. Materialising
        # the matches (bitmap OR over the prefix indexes) then sorting them is bounded.
        matches = stmt.cte("matches").prefix_with("MATERIALIZED", dialect="postgresql")
        stmt, id_col, key_col = select(matches.c.id), matches.c.id, matches.c.sort_key
    else:
        id_col, key_col = Account.id, key
    if lq.direction == "desc":
        stmt = stmt.order_by(key_col.desc(), id_col.desc())
    else:
        stmt = stmt.order_by(key_col.asc(), id_col.asc())
    return [row[0] for row in db.session.execute(stmt.limit(limit or lq.size).offset(offset))]


LISTED_FIELDS = (Account.id, Account.tenant_id, Account.account_number, Account.name, Account.company,
                 Account.email, Account.billing_type, Account.balance, Account.credit_limit,
                 Account.currency, Account.status)


@dataclass
class Row:
    account: object   # a read-only row with the LISTED_FIELDS of Account (a.name, a.balance...)
    users: int
    reseller: str
    counts: dict


def load_rows(ids: list[int]) -> list[Row]:
    """Load one page's accounts with their plan users, counts and reseller name, in order.

    Plain column rows, not ORM objects: nothing on the list is edited in place, and skipping
    the identity map makes a page of 100 noticeably cheaper.
    """
    if not ids:
        return []
    counts = [_count_subquery(model).label(key) for key, (model, *_) in COUNTED.items()]
    stmt = (
        select(*LISTED_FIELDS, func.coalesce(ServicePlan.users, 0).label("users"),
               Tenant.name.label("reseller"), *counts)
        .select_from(Account)
        .outerjoin(ServicePlan, ServicePlan.account_id == Account.id)
        .join(Tenant, Tenant.id == Account.tenant_id)
        .where(Account.id.in_(ids))
    )
    by_id = {row.id: Row(row, row.users, row.reseller, {key: getattr(row, key) for key in COUNTED})
             for row in db.session.execute(stmt)}
    return [by_id[i] for i in ids if i in by_id]


@dataclass
class Result:
    query: ListQuery
    rows: list[Row]
    total: int        # exact, or the cap when `exact` is False ("more than 10,000")
    pages: int        # the last page, or the last page the capped total vouches for
    exact: bool = True

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.query.page - 1) * self.query.size + 1

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0

    def page_window(self, radius: int = 2) -> list[int | None]:
        """Page numbers to link: first, last and a window around the current one (None = gap)."""
        page, pages = self.query.page, self.pages
        ends = {1, pages} if self.exact else {1}
        shown = sorted(ends | set(range(max(1, page - radius), min(pages, page + radius) + 1)))
        out: list[int | None] = []
        for n in shown:
            if out and n - out[-1] > 1:
                out.append(None)
            out.append(n)
        if not self.exact:
            out.append(None)  # more pages than the capped count can tell
        return out

    @property
    def has_next(self) -> bool:
        return self.query.page < self.pages or not self.exact


def _clamped(lq: ListQuery, pages: int) -> ListQuery:
    if lq.page <= pages:
        return lq
    return replace(lq, page=pages, notices=lq.notices + (
        f"There {'is' if pages == 1 else 'are'} only {pages} page{'s' if pages != 1 else ''}; "
        "showing the last one.",))


def list_accounts(lq: ListQuery) -> Result:
    clauses = where_clauses(lq)
    counted = count_accounts(clauses, cap=COUNT_CAP)
    if counted <= COUNT_CAP:
        pages = max(1, math.ceil(counted / lq.size))
        lq = _clamped(lq, pages)
        rows = load_rows(page_ids(lq, clauses, (lq.page - 1) * lq.size)) if counted else []
        return Result(query=lq, rows=rows, total=counted, pages=pages)

    # More than the cap: page on without the full count. One extra id tells whether a next
    # page exists; the last page tells the exact total by itself.
    offset = (lq.page - 1) * lq.size
    ids = page_ids(lq, clauses, offset, limit=lq.size + 1)
    if not ids:  # past the end (a typed or stale URL): count once, show the last page
        total = count_accounts(clauses)
        pages = max(1, math.ceil(total / lq.size))
        lq = _clamped(lq, pages)
        return Result(query=lq, rows=load_rows(page_ids(lq, clauses, (lq.page - 1) * lq.size)),
                      total=total, pages=pages)
    has_next = len(ids) > lq.size
    ids = ids[:lq.size]
    seen = offset + len(ids)
    if not has_next:
        return Result(query=lq, rows=load_rows(ids), total=seen, pages=lq.page)
    return Result(query=lq, rows=load_rows(ids), total=max(COUNT_CAP, seen),
                  pages=max(math.ceil(COUNT_CAP / lq.size), lq.page + 1), exact=False)


# --- bulk status ----------------------------------------------------------------------------

# action -> (operation of app.accounts.operations.set_account_status, statuses it applies to).
# A closed account is never reopened; one already in the target status is left alone.
BULK_ACTIONS = {
    "activate": ("enable", ("disabled", "suspended")),
    "deactivate": ("disable", ("active", "suspended")),
}


class BulkError(ValueError):
    pass


def parse_ids(values) -> list[int]:
    """Distinct positive integer ids from form values; anything else is dropped."""
    ids: list[int] = []
    seen = set()
    for v in values:
        try:
            n = int(str(v).strip())
        except ValueError:
            continue
        if 0 < n < 2**31 and n not in seen:  # ids are INTEGER: a larger value matches nothing
            seen.add(n)
            ids.append(n)
    return ids


def bulk_set_status(ids: list[int], action: str, reason: str | None = None) -> int:
    """Activate or deactivate the given accounts that are in scope; returns how many changed.
    Deactivating needs a reason (kept in each account's history).

    Ids outside the scope (another reseller's) are simply not found. Each change goes through
    the account page's own operation (same audit entry, same side effects). The rows are
    locked first, so a concurrent edit waits instead of failing half-way. Flushes only.
    """
    from app.accounts.operations import StaleEdit, set_account_status

    if action not in BULK_ACTIONS:
        raise BulkError("Choose activate or deactivate.")
    if not ids:
        raise BulkError("Select at least one account.")
    if len(ids) > MAX_BULK_IDS:
        raise BulkError(f"Select at most {MAX_BULK_IDS} accounts at a time.")
    operation, applies_to = BULK_ACTIONS[action]
    reason = " ".join((reason or "").split())[:200]
    if operation != "enable" and not reason:
        raise BulkError("Say why you deactivate them: the reason is kept in each account's history.")
    accounts = db.session.execute(
        select(Account).where(Account.id.in_(ids), Account.status.in_(applies_to))
        .order_by(Account.id).with_for_update()
    ).scalars().all()
    try:
        for account in accounts:
            set_account_status(account, operation, reason=reason or None)
    except StaleEdit as e:
        raise BulkError("Some of these accounts were changed meanwhile; nothing was saved. Try again.") from e
    return len(accounts)
