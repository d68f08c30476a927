"""Shared pieces of the report pages of both portals: the date range and the CSV response."""
from flask import Response

from app.rating.reports import DateRange, RangeError, parse_range, this_month


def date_range(args, tz: str = "UTC") -> tuple[DateRange, dict, dict]:
    """(range, errors by field, the values to show in the form), days in the zone `tz`. Bad
    input: this month, and why."""
    shown = {"from": (args.get("from") or "")[:20], "to": (args.get("to") or "")[:20]}
    try:
        rng = parse_range(args, tz)
    except RangeError as e:
        return this_month(tz=tz), {e.field: str(e)}, shown
    return rng, {}, rng.args()


def csv_response(pieces, filename: str) -> Response:
    """A CSV download built from text pieces (a report of one account and at most a year)."""
    return Response("".join(pieces), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
