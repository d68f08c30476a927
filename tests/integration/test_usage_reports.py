"""Automatic usage reports (issue 20, point 8): the last complete day, week or month in the
account's time zone, by email to the reseller and, when asked, to the customer, with the
period's calls as CSV; once per period whatever the cron does; delivered to a real SMTP
server (aiosmtpd, in-process)."""
import csv
import email
import io
from datetime import date, datetime

import pytest
from sqlalchemy import select, update

from app.accounts.details import save_details
from app.accounts.models import Account
from app.extensions import db
from app.notifications.models import Notification
from app.notifications.outbox import deliver
from app.notifications.usage_reports import last_complete_period, queue_due_reports
from app.rating.cdr import rate_calls
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import add_call, fresh_index_cache, give_plan, make_sheet

assert fresh_index_cache  # autouse fixture


@pytest.mark.parametrize("schedule,today,expected", [
    ("daily", date(2026, 12, 4), (date(2026, 12, 3), date(2026, 12, 3))),
    ("daily", date(2026, 1, 1), (date(2025, 12, 31), date(2025, 12, 31))),
    ("weekly", date(2026, 12, 4), (date(2026, 11, 23), date(2026, 11, 29))),     # a Friday: the week before
    ("weekly", date(2026, 11, 30), (date(2026, 11, 23), date(2026, 11, 29))),    # a Monday: the week just ended
    ("monthly", date(2026, 12, 1), (date(2026, 11, 1), date(2026, 11, 30))),
    ("monthly", date(2026, 3, 15), (date(2026, 2, 1), date(2026, 2, 28))),
    ("off", date(2026, 12, 4), None),
])
def test_the_last_complete_period(schedule, today, expected):
    rng = last_complete_period(schedule, today)
    assert (rng.start, rng.end) == expected if expected else rng is None


@pytest.fixture
def reporting(world):
    """Account A in New York with two calls on 3 Dec (local), one on 4 Dec at 00:30 local; daily
    reports to the reseller and the customer (at its low-credit address)."""
    a = world.account_a
    sheet = make_sheet(world.a, [("44", "GB", "0.60", "0", 60, 60)])
    give_plan(a, sheet, [("GB", 0)])
    with unscoped():
        db.session.execute(update(Account).where(Account.id == a.id).values(timezone="America/New_York"))
        db.session.execute(update(Tenant).where(Tenant.id == world.a.id).values(email="billing@reseller-a.example"))
        save_details(a.id, low_balance_email="alerts@harbour.example", report_schedule="daily", report_to_customer=True)
        db.session.commit()
    calls = [add_call(a, "442071234567", 90, datetime(2026, 12, 3, 15, 0)),
             add_call(a, "442071234567", 0, datetime(2026, 12, 3, 16, 0)),
             add_call(a, "442071234567", 60, datetime(2026, 12, 4, 5, 30))]   # 4 Dec 00:30 in New York
    with tenant_scope(world.a.id, descendants=False):
        rate_calls(calls)
        db.session.commit()
    return a


def _run(today):
    with unscoped():
        summary = queue_due_reports(today_of=lambda tz: today)
        db.session.commit()
    return summary


def _letters():
    with unscoped():
        return db.session.execute(select(Notification).where(Notification.kind == "usage_report")
                                  .order_by(Notification.id)).scalars().all()


def test_a_daily_report_goes_to_the_reseller_and_the_customer_once(world, reporting):
    assert _run(date(2026, 12, 4)) == {"accounts": 1, "queued": 2}
    letters = _letters()
    assert [n.to_email for n in letters] == ["billing@reseller-a.example", "alerts@harbour.example"]
    body = letters[0].body
    assert "Daily report: 2026-12-03 (America/New_York)" in body
    assert "GB           2         1      1.5  $1.20" in body        # 90 s billed 60/60: 2 minutes at 0.60
    rows = list(csv.reader(io.StringIO(letters[0].attachment)))
    assert rows[0][0] == "Started (America/New_York)"
    assert [r[0] for r in rows[1:]] == ["2026-12-03 10:00:00", "2026-12-03 11:00:00"]   # not the 4 Dec call
    assert letters[0].attachment_name == f"calls-{reporting.account_number}-2026-12-03-2026-12-03.csv"
    # the next ticks of the same day, and a racing second run, change nothing
    assert _run(date(2026, 12, 4))["queued"] == 0
    assert len(_letters()) == 2
    # the next day is the next report
    assert _run(date(2026, 12, 5))["queued"] == 2


def test_reports_off_or_no_customer_copy(world, reporting):
    with unscoped():
        save_details(reporting.id, report_schedule="weekly", report_to_customer=False)
        db.session.commit()
    assert _run(date(2026, 12, 7))["queued"] == 1          # the week of 30 Nov to 6 Dec, reseller only
    assert "Weekly report: 2026-11-30 to 2026-12-06" in _letters()[0].body
    with unscoped():
        save_details(reporting.id, report_schedule="off")
        db.session.commit()
    assert _run(date(2026, 12, 14)) == {"accounts": 0, "queued": 0}


def test_the_report_reaches_a_real_smtp_server_with_its_csv(app, world, reporting, monkeypatch):
    from aiosmtpd.controller import Controller

    received = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:               # a free port for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port,
                           "SMTP_STARTTLS": False}.items():
            monkeypatch.setitem(app.config, key, value)
        _run(date(2026, 12, 4))
        for n in _letters():
            assert deliver(n.id, n.tenant_id) == "sent"
            db.session.commit()
            assert deliver(n.id, n.tenant_id) == "sent"     # a repeated job sends nothing more
    finally:
        controller.stop()
    assert sorted(rcpt for e in received for rcpt in e.rcpt_tos) == ["alerts@harbour.example",
                                                                   "billing@reseller-a.example"]
    msg = email.message_from_bytes(received[0].content)
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    (name, part), = parts.items()
    assert name.endswith("-2026-12-03-2026-12-03.csv") and part.get_content_type() == "text/csv"
    assert "2026-12-03 10:00:00" in part.get_payload(decode=True).decode()


def test_without_smtp_the_letter_is_kept_as_an_eml_file(app, world, reporting, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    _run(date(2026, 12, 4))
    first = _letters()[0]
    assert deliver(first.id, first.tenant_id) == "logged"
    kept = email.message_from_bytes((tmp_path / "mail" / f"{first.id}.eml").read_bytes())
    assert kept["To"] == "billing@reseller-a.example"
    assert any(p.get_filename() for p in kept.walk())


def test_the_reseller_sets_the_schedule_on_the_account_page(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    url = f"/reseller/accounts/{world.account_a.id}/profile"
    form = {"agent_id": "0", "agent_commission_rate": "0", "group_id": "0", "report_schedule": "monthly",
            "report_to_customer": "y"}
    assert owner.post(url, data=form).status_code == 303
    bad = owner.post(url, data={**form, "report_schedule": "hourly"})
    assert bad.status_code == 422 and "Choose off, daily, weekly or monthly." in bad.get_data(as_text=True)
    from app.accounts.details import details_of
    with unscoped():
        row = details_of(world.account_a.id)
        assert (row.report_schedule, row.report_to_customer) == ("monthly", True)


def test_the_hourly_job_queues_todays_due_reports_once(world, reporting):
    from workers.usage_reports import queue_usage_reports

    first = queue_usage_reports()            # the real clock: yesterday in New York
    assert first == {"accounts": 1, "queued": 2}
    assert queue_usage_reports()["queued"] == 0
    assert {n.dedupe_key.rsplit(":", 1)[1] for n in _letters()} == {"reseller", "customer"}
