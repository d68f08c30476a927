"""Automatic alerts (issue 16, point 7): low balance once per crossing (re-armed only when the
balance rises back above the level), zero balance, expiry soon, reminders hourly or daily for
at most N days, the account's settings (email alerts off, separate address), sign-in notices;
the letters read off a real SMTP server (aiosmtpd, in-process)."""
import socket
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app import ledger
from app.accounts.details import save_details
from app.accounts.models import Account
from app.extensions import db
from app.notifications.alerts import sweep
from app.notifications.models import Notification
from app.notifications.outbox import deliver
from tenants.scope import unscoped

T0 = datetime(2026, 12, 4, 9, 0)


@pytest.fixture
def smtp(app, monkeypatch):
    """A real SMTP server in this process; `received` lists (to, subject) as they arrive."""
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    received, lock = [], threading.Lock()

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            msg = message_from_bytes(envelope.content)
            with lock:
                received.append((envelope.rcpt_tos[0], msg["Subject"]))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False}.items():
        monkeypatch.setitem(app.config, key, value)
    yield received
    controller.stop()


def _sweep(now):
    with unscoped():
        out = sweep(now)
        db.session.commit()
        for n in db.session.execute(select(Notification).where(Notification.status == "queued")).scalars().all():
            deliver(n.id, n.tenant_id)
        db.session.commit()
    return out


def _set(account, **values):
    with unscoped():
        db.session.execute(update(Account).where(Account.id == account.id).values(**values))
        db.session.commit()


def _post(account, amount, key):
    with unscoped():
        ledger.post(account.id, Decimal(amount), "adjustment", key)
        db.session.commit()


def test_low_balance_once_per_crossing_and_re_armed_above_the_level(world, smtp):
    a = world.account_a                                    # 10.00
    _set(a, low_balance_threshold=Decimal("5"))
    assert _sweep(T0)["sent"] == 0 and smtp == []
    _post(a, "-6", "d1")                                   # 4.00: crossed
    _sweep(T0 + timedelta(minutes=5))
    _sweep(T0 + timedelta(minutes=10))                     # still below: nothing more
    _post(a, "-1", "d2")                                   # 3.00: still below, no new crossing
    _sweep(T0 + timedelta(minutes=15))
    assert smtp == [(a.email, f"Low balance on account {a.account_number}")]
    _post(a, "10", "c1")                                   # 13.00: above again, re-armed
    assert _sweep(T0 + timedelta(minutes=20))["rearmed"] == 1
    _post(a, "-9", "d3")                                   # 4.00: a second crossing
    _sweep(T0 + timedelta(minutes=25))
    assert len(smtp) == 2


def test_zero_balance_replaces_low_and_goes_to_the_separate_address(world, smtp):
    a = world.account_a
    _set(a, low_balance_threshold=Decimal("5"))
    with unscoped():
        save_details(a.id, low_balance_email="alerts@harbour.example")
        db.session.commit()
    _post(a, "-10", "d1")                                   # 0.00
    _sweep(T0)
    assert smtp == [("alerts@harbour.example", f"Account {a.account_number}: the balance is used up")]


def test_reminders_follow_the_schedule_and_stop_after_n_days(world, smtp):
    a = world.account_a
    _set(a, low_balance_threshold=Decimal("20"))           # 10.00 < 20.00 from the start
    with unscoped():
        save_details(a.id, alert_schedule="daily", alert_stop_days=2)
        db.session.commit()
    _sweep(T0)
    _sweep(T0 + timedelta(hours=5))                        # less than a day: nothing
    _sweep(T0 + timedelta(days=1))                         # a reminder
    _sweep(T0 + timedelta(days=1, hours=1))
    _sweep(T0 + timedelta(days=2))                         # two days since the crossing: stop
    _sweep(T0 + timedelta(days=3))
    assert len(smtp) == 2


def test_email_alerts_off_sends_nothing(world, smtp):
    _set(world.account_a, low_balance_threshold=Decimal("20"), email_alerts=False)
    _sweep(T0)
    assert smtp == []


def test_expiry_soon_once(world, smtp):
    a = world.account_a
    _set(a, expiry_mode="date", expiry_date=date(2026, 12, 8), timezone="UTC")
    _sweep(datetime(2026, 11, 28, 9))                       # 10 days before: not yet
    _sweep(datetime(2026, 12, 3, 9))                        # within 7 days
    _sweep(datetime(2026, 12, 4, 9))
    assert smtp == [(a.email, f"Account {a.account_number} expires on 2026-12-09")]


def test_two_sweeps_at_once_send_one_letter(app, world):
    _set(world.account_a, low_balance_threshold=Decimal("20"))
    results, errors = [], []

    def run():
        try:
            with app.app_context():
                with unscoped():
                    results.append(sweep(T0))
                    db.session.commit()
        except Exception as e:     # a loser of the race may fail on the unique key: never two letters
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with unscoped():
        sent = db.session.execute(select(Notification).where(Notification.kind == "low_balance")).scalars().all()
    assert len(sent) == 1


def test_a_sign_in_notice_when_the_account_asks(world, smtp, new_client):
    from tests.conftest import PASSWORD

    client = new_client()
    client.post("/portal/login", data={"email": world.customer_a.email, "password": PASSWORD})
    with unscoped():
        assert db.session.execute(select(Notification).where(Notification.kind == "signin")).first() is None
        save_details(world.account_a.id, signin_notification=True)
        db.session.commit()
    new_client().post("/portal/login", data={"email": world.customer_a.email, "password": PASSWORD})
    with unscoped():
        [n] = db.session.execute(select(Notification).where(Notification.kind == "signin")).scalars().all()
        assert world.customer_a.email in n.body and n.to_email == world.account_a.email
