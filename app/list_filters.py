"""A list's status and interval filter, read from a query string (the reseller's invoices and
payments, the customer's bills and payments): a bad value is dropped with a message for its
field, and the interval becomes datetime bounds for the query."""
from collections.abc import Container
from datetime import date, datetime, timedelta


def read_status(args, allowed: Container[str], errors: dict[str, str]) -> str:
    """The `status` argument if it is one of `allowed`, else "" (and a message when it was set)."""
    status = (args.get("status") or "").strip()
    if status and status not in allowed:
        errors["status"] = "Unknown status."
        return ""
    return status


def read_interval(args, errors: dict[str, str]) -> tuple[date | None, date | None]:
    """`date_from` and `date_to` (ISO days, both inclusive); an end before the start is dropped."""
    days: dict[str, date | None] = {"date_from": None, "date_to": None}
    for name in days:
        raw = (args.get(name) or "").strip()
        if raw:
            try:
                days[name] = date.fromisoformat(raw)
            except ValueError:
                errors[name] = "Use a date like 2026-12-31."
    start, end = days["date_from"], days["date_to"]
    if start and end and start > end:
        errors["date_to"] = "The end is before the start."
        end = None
    return start, end


def day_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """[start, end): midnight of the first day and midnight after the last (None: open)."""
    start = datetime.combine(date_from, datetime.min.time()) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time()) if date_to else None
    return start, end
