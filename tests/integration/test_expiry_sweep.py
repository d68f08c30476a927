"""The expiry sweep (issue 16, point 6): an account past its expiry (any of the three modes)
becomes expired once (status, history, letter, a notice that makes the watchers hang up its
calls); it cannot be enabled again before its expiry is changed."""
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.accounts.expiry import expire_due_accounts
from app.accounts.models import Account
from app.audit import AuditEntry
from app.calls import live
from app.extensions import db
from app.jobs import redis_connection
from app.notifications.models import Notification
from tenants.scope import unscoped

NOW = datetime(2026, 12, 4, 9, 0)


def _set(account, **values):
    with unscoped():
        db.session.execute(update(Account).where(Account.id == account.id).values(**values))
        db.session.commit()


def _status(account):
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(Account.status).where(Account.id == account.id)).scalar_one()


def _expire(now=NOW):
    with unscoped():
        ids = expire_due_accounts(now)
        db.session.commit()
    return ids


@pytest.mark.parametrize("values,expired", [
    ({"expiry_mode": "date", "expiry_date": date(2026, 12, 3), "timezone": "UTC"}, True),
    ({"expiry_mode": "date", "expiry_date": date(2026, 12, 4), "timezone": "UTC"}, False),   # through the 4th
    ({"expiry_mode": "days_after_creation", "expiry_days": 30, "created_at": NOW - timedelta(days=31)}, True),
    ({"expiry_mode": "days_after_first_use", "expiry_days": 30, "first_used_at": NOW - timedelta(days=29)}, False),
    ({"expiry_mode": "days_after_first_use", "expiry_days": 30, "first_used_at": None}, False),
])
def test_each_mode(world, values, expired):
    _set(world.account_a, **values)
    assert _expire() == ([world.account_a.id] if expired else [])
    assert _status(world.account_a) == ("expired" if expired else "active")


def test_expired_once_with_history_letter_and_a_notice_to_the_watchers(app, world):
    _set(world.account_a, expiry_mode="date", expiry_date=date(2026, 12, 1), timezone="UTC")
    pubsub = redis_connection(app).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.CHANNEL)
    assert _expire() == [world.account_a.id]
    assert _expire() == []                                   # a second sweep changes nothing
    got, deadline = [], time.monotonic() + 3
    while world.account_a.account_number.encode() not in got and time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.5)
        if m:
            got.append(m["data"])
    pubsub.close()
    assert world.account_a.account_number.encode() in got
    with unscoped():
        assert len(db.session.execute(select(AuditEntry).where(AuditEntry.action == "account.expired")).all()) == 1
        [letter] = db.session.execute(select(Notification).where(Notification.kind == "expired")).scalars().all()
        assert "expired on 2026-12-02 00:00 UTC" in letter.body


def test_enable_needs_the_expiry_changed_first(world, new_client, login):
    _set(world.account_a, expiry_mode="date", expiry_date=date(2026, 1, 1), timezone="UTC")
    _expire(datetime.now())
    owner = login(new_client(), world.owner_a)
    url = f"/reseller/accounts/{world.account_a.id}"
    html = owner.post(url + "/status", data={"action": "enable"}, follow_redirects=True).get_data(as_text=True)
    assert "change its expiry first" in html and _status(world.account_a) == "expired"
    assert "expired" in owner.get("/reseller/accounts?status=expired").get_data(as_text=True)


def test_the_job_expires_and_alerts_in_one_sweep(world):
    from workers.notifications import sweep_alerts

    _set(world.account_a, expiry_mode="date", expiry_date=date(2026, 1, 1), timezone="UTC")
    assert sweep_alerts()["expired"] == 1
    assert _status(world.account_a) == "expired"
