"""The status and interval filter the invoice and payment lists share (app/list_filters.py)."""
from datetime import date, datetime

from app.list_filters import day_bounds, read_interval, read_status


def test_a_known_status_is_kept_and_an_unknown_one_dropped_with_a_message():
    errors = {}
    assert read_status({"status": " paid "}, ("paid", "void"), errors) == "paid" and errors == {}
    assert read_status({"status": "nope"}, {"paid": ("paid",)}, errors) == ""
    assert errors == {"status": "Unknown status."}
    assert read_status({}, ("paid",), errors) == ""


def test_the_interval_reads_iso_days_and_drops_a_bad_day_or_an_end_before_the_start():
    errors = {}
    assert read_interval({"date_from": "2026-10-01", "date_to": "2026-10-31"}, errors) == (
        date(2026, 10, 1), date(2026, 10, 31)) and errors == {}
    assert read_interval({"date_from": "31/12/2026", "date_to": "2026-10-31"}, errors) == (None, date(2026, 10, 31))
    assert errors == {"date_from": "Use a date like 2026-12-31."}
    errors = {}
    assert read_interval({"date_from": "2026-11-01", "date_to": "2026-10-31"}, errors) == (date(2026, 11, 1), None)
    assert errors == {"date_to": "The end is before the start."}


def test_the_bounds_run_from_midnight_of_the_first_day_to_midnight_after_the_last():
    assert day_bounds(date(2026, 10, 1), date(2026, 10, 31)) == (datetime(2026, 10, 1), datetime(2026, 11, 1))
    assert day_bounds(None, None) == (None, None)
