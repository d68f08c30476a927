"""Call reports: per-minute (billed calls of one account) and margin (sell vs buy price).

A range is calendar days in a time zone (the account's for its own reports, UTC for the
resellers' across accounts); it includes both its days. Call times are stored in UTC.
- Per minute: the account's calls billed at a rate (charged_seconds > 0, no rating error) in
  the range. Calls wholly inside a bundle are left out (they are not billed per minute); a
  call that ran past its bundle shows its charged part. Totals: calls, minutes (billed
  seconds / 60), charges, and the account's available credit now.
- Margin: every answered, rated call in the range, by reseller (the account's tenant) and by
  destination country: sell = what the accounts were charged, buy = what the reseller pays
  its parent (Call.buy_cost), margin = sell − buy over the calls that have a buy price; calls
  without one (no buy sheet, no matching prefix) are counted apart. Bundle calls count with a
  sell of 0: bundles cost the reseller its buy price all the same.
All queries go through the tenant scope: a reseller sees its own and its sub-resellers' calls.
"""
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, func, select

from app.accounts.models import Account
from app.calls.models import Call
from app.extensions import db
from app.timezones import local_midnight_utc, to_local, today_in
from tenants.models import Tenant

ZERO = Decimal(0)
MAX_DAYS = 366
PAGE_SIZE = 100


class RangeError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date           # inclusive
    tz: str = "UTC"     # whose calendar days these are

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """Naive UTC [from, to): the first day's midnight to the day after the last, in the zone."""
        return local_midnight_utc(self.start, self.tz), local_midnight_utc(self.end + timedelta(days=1), self.tz)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def args(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def this_month(today: date | None = None, tz: str = "UTC") -> DateRange:
    today = today or today_in(tz)
    return DateRange(today.replace(day=1), today, tz)


def parse_range(args, tz: str = "UTC") -> DateRange:
    """From ?from=YYYY-MM-DD&to=YYYY-MM-DD (default: this month so far), days in the zone `tz`;
    RangeError names the field."""
    default = this_month(tz=tz)
    values = {}
    for field, fallback in (("from", default.start), ("to", default.end)):
        raw = (args.get(field) or "").strip()
        if not raw:
            values[field] = fallback
            continue
        try:
            values[field] = date.fromisoformat(raw)
        except ValueError:
            raise RangeError(field, f"“{raw[:20]}” is not a date: use YYYY-MM-DD.") from None
    if values["to"] < values["from"]:
        raise RangeError("to", "The end date is before the start date.")
    if (values["to"] - values["from"]).days >= MAX_DAYS:
        raise RangeError("to", f"Choose at most {MAX_DAYS} days.")
    return DateRange(values["from"], values["to"], tz)


# -- per minute ----------------------------------------------------------------------------------
def _billed(account_id: int, rng: DateRange):
    start, end = rng.bounds
    return (Call.account_id == account_id, Call.started_at >= start, Call.started_at < end,
            Call.charged_seconds > 0, Call.rating_error == "", Call.rated_at.is_not(None))


@dataclass
class PerMinute:
    account: Account
    range: DateRange
    rows: list
    calls: int
    billed_seconds: int
    duration_seconds: int
    charges: Decimal
    page: int
    pages: int
    daily: list

    @property
    def minutes(self) -> Decimal:
        return (Decimal(self.billed_seconds) / 60).quantize(Decimal("0.01"))

    @property
    def available_credit(self) -> Decimal:
        return self.account.available_credit


def per_minute(account: Account, rng: DateRange, page: int = 1) -> PerMinute:
    where = _billed(account.id, rng)
    calls, billed, duration, charges = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Call.charged_seconds), 0), func.coalesce(func.sum(Call.billsec), 0),
               func.coalesce(func.sum(Call.cost), 0)).where(*where)).one()
    pages = max(1, -(-calls // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = list(db.session.execute(select(Call).where(*where).order_by(Call.started_at.desc(), Call.id.desc())
                                   .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).scalars())
    daily = daily_totals(rng, [Call.cost], where)
    return PerMinute(account, rng, rows, calls, int(billed), int(duration), Decimal(charges), page, pages, daily)


def per_minute_csv(account: Account, rng: DateRange):
    """The same calls as CSV text pieces (all of them, oldest first)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow((f"Started ({rng.tz})", "Destination", "Country", "Duration s", "Billed s", "Bundle s", "Charge", "Currency"))
    yield out.getvalue()
    result = db.session.execute(
        select(Call.started_at, Call.destination, Call.country, Call.billsec, Call.charged_seconds, Call.bundle_seconds,
               Call.cost).where(*_billed(account.id, rng)).order_by(Call.started_at, Call.id)
        .execution_options(yield_per=2000))
    for part in result.partitions(2000):
        out = io.StringIO()
        w = csv.writer(out)
        for started, destination, country, billsec, charged, bundle, cost in part:
            w.writerow((to_local(started, rng.tz).isoformat(sep=" ", timespec="seconds"), csv_cell(destination), country, billsec,
                        charged, bundle, format(Decimal(cost), "f"), account.currency))
        yield out.getvalue()


def csv_cell(text: str) -> str:
    """A cell a spreadsheet would run as a formula is written behind a quote (every CSV export)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def daily_totals(rng: DateRange, columns, where) -> list:
    """[(day, [total of each column])] for every day of the range (days without calls: zeros),
    days in the range's zone: PostgreSQL shifts each call into the zone; elsewhere (the SQLite
    demo) the totals are kept per UTC hour and moved to their local day here."""
    sums = [func.coalesce(func.sum(c), 0) for c in columns]
    found: dict[date, list[Decimal]] = {}
    if db.session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone(rng.tz, func.timezone("UTC", Call.started_at)))
        for row in db.session.execute(select(day, *sums).where(*where).group_by(day)):
            found[row[0]] = [Decimal(v) for v in row[1:]]
    else:
        hour = func.strftime("%Y-%m-%d %H:00:00", Call.started_at)
        for row in db.session.execute(select(hour, *sums).where(*where).group_by(hour)):
            key = to_local(datetime.fromisoformat(str(row[0])), rng.tz).date()
            found[key] = [a + Decimal(v) for a, v in zip(found.get(key, [ZERO] * len(columns)), row[1:])]
    return [(d, found.get(d, [ZERO] * len(columns))) for d in rng.days]


# -- margin --------------------------------------------------------------------------------------
@dataclass
class MarginRow:
    key: str            # tenant name or country code
    label: str
    currency: str
    calls: int
    seconds: int
    sell: Decimal
    buy: Decimal
    sell_priced: Decimal
    unpriced: int

    @property
    def margin(self) -> Decimal:
        return self.sell_priced - self.buy

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.sell_priced:
            return None
        return (100 * self.margin / self.sell_priced).quantize(Decimal("0.1"))

    @property
    def minutes(self) -> Decimal:
        return (Decimal(self.seconds) / 60).quantize(Decimal("0.01"))


def _margin_where(rng: DateRange):
    start, end = rng.bounds
    return (Call.started_at >= start, Call.started_at < end, Call.rated_at.is_not(None), Call.billsec > 0)


def _margin_columns():
    priced = Call.buy_cost.is_not(None)
    return (func.count(), func.coalesce(func.sum(Call.billsec), 0), func.coalesce(func.sum(Call.cost), 0),
            func.coalesce(func.sum(Call.buy_cost), 0),
            func.coalesce(func.sum(case((priced, Call.cost), else_=0)), 0),
            func.coalesce(func.sum(case((priced, 0), else_=1)), 0))


def _rows(result, label_of) -> list[MarginRow]:
    return [MarginRow(str(key), label_of(key), currency, calls, int(seconds), Decimal(sell), Decimal(buy),
                      Decimal(sell_priced), int(unpriced))
            for key, currency, calls, seconds, sell, buy, sell_priced, unpriced in result]


def margin_by_reseller(rng: DateRange) -> list[MarginRow]:
    names = dict(db.session.execute(select(Tenant.id, Tenant.name)).all())
    result = db.session.execute(
        select(Call.tenant_id, Account.currency, *_margin_columns()).join(Account, Account.id == Call.account_id)
        .where(*_margin_where(rng)).group_by(Call.tenant_id, Account.currency)
        .order_by(func.sum(Call.cost).desc()))
    return _rows(result, lambda tid: names.get(tid, f"Reseller {tid}"))


def margin_by_destination(rng: DateRange, limit: int = 200) -> list[MarginRow]:
    import pycountry

    def label(code):
        if not code:
            return "Non-geographic / no rate"
        c = pycountry.countries.get(alpha_2=code)
        return c.name if c else code

    result = db.session.execute(
        select(Call.country, Account.currency, *_margin_columns()).join(Account, Account.id == Call.account_id)
        .where(*_margin_where(rng)).group_by(Call.country, Account.currency)
        .order_by(func.sum(Call.cost).desc()).limit(limit))
    return _rows(result, label)


def margin_daily(rng: DateRange, currency: str) -> list:
    """[(day, [sell, buy])] for the chart of one currency (amounts of two currencies are never
    added: one chart per currency)."""
    in_currency = Call.account_id.in_(select(Account.id).where(Account.currency == currency))
    return daily_totals(rng, [Call.cost, Call.buy_cost], (*_margin_where(rng), in_currency))


def totals(rows: list[MarginRow]) -> dict[str, MarginRow]:
    """Per currency, the sum of the rows."""
    out: dict[str, MarginRow] = {}
    for r in rows:
        t = out.setdefault(r.currency, MarginRow("total", "Total", r.currency, 0, 0, ZERO, ZERO, ZERO, 0))
        t.calls += r.calls
        t.seconds += r.seconds
        t.sell += r.sell
        t.buy += r.buy
        t.sell_priced += r.sell_priced
        t.unpriced += r.unpriced
    return out
