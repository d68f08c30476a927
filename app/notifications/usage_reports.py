"""Automatic usage reports (seed 002): for each account that asks, the last complete day, week
(Monday to Sunday) or month in the account's time zone: calls, answered calls, minutes and
charges by country, the balance now, and every call of the period as an attached CSV. Always
to the reseller (its email), to the customer too when the account says so (the low-credit
address if set, else the account's email).

Once per account, period and recipient: the letter's dedupe key is unique, so an hourly cron
tick, a retried job or two workers change nothing. A report is queued from the first tick after
its period ends; an account that turns reports on gets the last complete period.
"""
import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from app.accounts.details import AccountDetails
from app.accounts.models import Account
from app.calls.models import Call
from app.extensions import db
from app.notifications.models import Notification
from app.notifications.outbox import queue_email, render_template
from app.rating.reports import DateRange, csv_cell
from app.timezones import to_local, today_in
from tenants.models import Tenant

log = logging.getLogger(__name__)


def last_complete_period(schedule: str, today: date) -> DateRange | None:
    """The most recent whole day/week/month before `today` (days of the account's zone)."""
    if schedule == "daily":
        day = today - timedelta(days=1)
        return DateRange(day, day)
    if schedule == "weekly":
        monday = today - timedelta(days=today.weekday() + 7)
        return DateRange(monday, monday + timedelta(days=6))
    if schedule == "monthly":
        last = today.replace(day=1) - timedelta(days=1)
        return DateRange(last.replace(day=1), last)
    return None


@dataclass
class CountryUsage:
    country: str
    calls: int
    answered: int
    seconds: int
    charges: Decimal


def usage_by_country(account_id: int, rng: DateRange) -> list[CountryUsage]:
    start, end = rng.bounds
    rows = db.session.execute(
        select(Call.country, func.count(), func.sum(case((Call.billsec > 0, 1), else_=0)),
               func.coalesce(func.sum(Call.billsec), 0), func.coalesce(func.sum(Call.cost), 0))
        .where(Call.account_id == account_id, Call.started_at >= start, Call.started_at < end)
        .group_by(Call.country).order_by(Call.country)).all()
    return [CountryUsage(c or "—", n, int(a or 0), int(s), Decimal(m)) for c, n, a, s, m in rows]


def calls_csv(account: Account, rng: DateRange) -> str:
    start, end = rng.bounds
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow((f"Started ({rng.tz})", "Extension", "Destination", "Country", "Disposition", "Duration s",
                "Billed s", "Bundle s", "Charge", "Currency", "Rating error"))
    for c in db.session.execute(select(Call).where(Call.account_id == account.id, Call.started_at >= start,
                                                   Call.started_at < end).order_by(Call.started_at, Call.id)
                                .execution_options(yield_per=2000)).scalars():
        w.writerow((to_local(c.started_at, rng.tz).isoformat(sep=" ", timespec="seconds"), c.extension, csv_cell(c.destination),
                    c.country, c.disposition, c.billsec, c.charged_seconds, c.bundle_seconds,
                    "" if c.cost is None else format(Decimal(c.cost), "f"), account.currency, c.rating_error))
    return out.getvalue()


def recipients(account: Account, details: AccountDetails, reseller: Tenant) -> list[tuple[str, str]]:
    """[(who, address)]: the reseller, and the customer when the account asks."""
    out = [("reseller", reseller.email)] if reseller.email else []
    if details.report_to_customer:
        out.append(("customer", details.low_balance_email or account.email))
    return [(who, addr) for who, addr in out if addr]


def queue_report(account: Account, details: AccountDetails, reseller: Tenant, rng: DateRange) -> int:
    """Queue the period's report to each recipient not yet sent it; the number queued."""
    usage = usage_by_country(account.id, rng)
    body = render_template("email/usage_report.txt", account=account, reseller=reseller, rng=rng, usage=usage,
                           schedule=details.report_schedule,
                           totals=CountryUsage("all", sum(u.calls for u in usage), sum(u.answered for u in usage),
                                               sum(u.seconds for u in usage), sum((u.charges for u in usage), Decimal(0))))
    attachment = calls_csv(account, rng)
    name = f"calls-{account.account_number}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv"
    queued = 0
    for who, address in recipients(account, details, reseller):
        key = f"usage-report:{account.id}:{rng.start.isoformat()}:{rng.end.isoformat()}:{who}"
        if db.session.execute(select(Notification.id).where(Notification.tenant_id == account.tenant_id,
                                                            Notification.dedupe_key == key)).first():
            continue
        try:
            with db.session.begin_nested():          # a racing worker's row: skip, keep the rest
                n = queue_email(tenant_id=account.tenant_id, account_id=account.id, to=address, kind="usage_report",
                                subject=f"Usage report {rng.start.isoformat()}"
                                        + (f" to {rng.end.isoformat()}" if rng.end != rng.start else "")
                                        + f": {account.name} ({account.account_number})", body=body)
                n.dedupe_key, n.attachment_name, n.attachment = key, name, attachment
                db.session.flush()
        except IntegrityError:
            continue
        queued += 1
    return queued


def queue_due_reports(today_of=today_in) -> dict:
    """Every account with reports on (all tenants: the caller is the cron job, unscoped):
    queue its last complete period's report where not yet sent. Flushes, never commits."""
    rows = db.session.execute(
        select(Account, AccountDetails, Tenant)
        .join(AccountDetails, AccountDetails.account_id == Account.id)
        .join(Tenant, Tenant.id == Account.tenant_id)
        .where(AccountDetails.report_schedule != "off", Account.status != "closed")
        .order_by(Account.id)).all()
    summary = {"accounts": len(rows), "queued": 0}
    for account, details, reseller in rows:
        rng = last_complete_period(details.report_schedule, today_of(account.timezone))
        if rng is None:
            continue
        summary["queued"] += queue_report(account, details, reseller, DateRange(rng.start, rng.end, account.timezone))
    return summary
