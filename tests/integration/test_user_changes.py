"""User-count decreases (issue 16, point 4): scheduled for the next billing period (both portals,
cancellable from both), applied by the period run exactly once so that period's users charge uses
the new count; or, when the reseller allows it, applied at once with a prorated credit."""
import re
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.audit import AuditEntry
from app.billing.models import ServicePlan
from app.billing.orders import Order
from app.billing.user_changes import ScheduledUserChange
from app.extensions import db
from app.ledger import balance_mismatches
from app.logins.models import User
from provisioning.models import Extension
from provisioning.realtime import PsEndpoint
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped
from tests.integration.billing_support import account, billed_account, entries, ledger_rows, set_fields
from tests.integration.onboarding_support import row_counts
from workers.billing import charge_period

URL = "/reseller/accounts/{}"
TODAY = datetime.now(timezone.utc).date()
# The test accounts are billed monthly on day 1, in UTC: the next period starts on the 1st of next month.
NEXT_START = date(TODAY.year + TODAY.month // 12, TODAY.month % 12 + 1, 1)
NEXT = f"{NEXT_START:%Y-%m}"
NEXT_NOW = f"{NEXT_START.isoformat()}T12:00:00+00:00"
D = NEXT_START.isoformat()
AFTER_NEXT = date(NEXT_START.year + NEXT_START.month // 12, NEXT_START.month % 12 + 1, 1)


def TID(world) -> int:
    """Reseller A's id, kept apart from its row (the runs reset the session)."""
    if not hasattr(world, "a_id"):
        world.a_id, world.b_id = world.a.id, world.b.id
    return world.a_id


def TIDB(world) -> int:
    TID(world)
    return world.b_id


@pytest.fixture
def acct(world):
    """3 users at 5.00 of reseller A, balance 100 less the prorated first month."""
    TID(world)
    return billed_account(world.a, users=3, cost_per_user="5.00", credit="100.00", portal_password="customer-pass-1")


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


@pytest.fixture
def customer(acct, new_client, login):
    with unscoped():
        user = db.session.execute(select(User).where(User.account_id == acct)).scalar_one()
    return login(new_client(), user)


def _exts(account_id) -> list[str]:
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(Extension.number).where(Extension.account_id == account_id)
                                  .order_by(Extension.id)).scalars().all()


def _users(account_id) -> int:
    with unscoped():
        return db.session.execute(select(ServicePlan.users).where(ServicePlan.account_id == account_id)).scalar_one()


def _changes(account_id) -> list[tuple[int, str]]:
    with unscoped():
        db.session.expire_all()
        return [(c.to_users, c.status) for c in db.session.execute(
            select(ScheduledUserChange).where(ScheduledUserChange.account_id == account_id)
            .order_by(ScheduledUserChange.id)).scalars()]


def _actions(account_id) -> list[str]:
    with unscoped():
        return db.session.execute(select(AuditEntry.action).where(AuditEntry.account_id == account_id)
                                  .order_by(AuditEntry.id)).scalars().all()


def _accepted(html) -> dict:
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)
            for name in ("users", "accepted_from", "accepted_charge", "accepted_when")}


def _change(client, base, users, status=303):
    """Preview, then accept what the preview showed (as the browser would)."""
    html = client.post(base + "/users/preview", data={"users": str(users)}).get_data(as_text=True)
    resp = client.post(base + "/users/apply", data=_accepted(html))
    assert resp.status_code == status, resp.get_data(as_text=True)[:2000]
    return html


def _set_immediate(tenant_id, value=True):
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == tenant_id)).scalar_one().user_decrease_immediate = value
        db.session.commit()


def _run(tenant_id, key=NEXT, now=NEXT_NOW):
    db.session.remove()
    return charge_period(tenant_id, key, now=now)


# --- scheduled at the next period ----------------------------------------------------------------

def test_a_decrease_is_scheduled_and_the_period_run_applies_it_once_with_the_new_count(world, owner, acct):
    base = URL.format(acct)
    start_balance, before_exts = account(acct).balance, _exts(acct)
    html = _change(owner, base, 1)
    assert f"2 users removed on {NEXT_START.isoformat()}" in html and f"Schedule for {D}" in html
    assert f"extensions {before_exts[1]}, {before_exts[2]}" in html
    assert 'name="accepted_charge" value="0"' in html and f'name="accepted_when" value="{D}"' in html
    # Nothing changes yet: the users, the extensions, the balance.
    assert _exts(acct) == before_exts and _users(acct) == 3 and account(acct).balance == start_balance
    assert _changes(acct) == [(1, "scheduled")]
    assert "plan.users_change_scheduled" in _actions(acct)
    page = owner.get(base).get_data(as_text=True)
    assert f"Scheduled: 3 → 1 users from {D}" in page and "Cancel this change" in page
    assert page.count(f"(removed on {D})") == 2

    # The current period's run (a retry, say) leaves it alone: it starts with the next period.
    _run(TID(world), key=TODAY.strftime("%Y-%m"), now=datetime.now(timezone.utc).isoformat())
    assert _changes(acct) == [(1, "scheduled")] and _exts(acct) == before_exts

    summary = _run(TID(world))
    assert summary["failed"] == 0
    assert _exts(acct) == before_exts[:1] and _users(acct) == 1
    with unscoped():
        assert db.session.query(PsEndpoint).filter(PsEndpoint.account_id == acct).count() == 1
    assert _changes(acct) == [(1, "applied")]
    assert entries(acct)[f"account:{acct}:users:{NEXT}"] == Decimal("-5.00")      # 1 user, not 3
    with unscoped():
        order = db.session.execute(select(Order).where(Order.account_id == acct, Order.kind == "users")).scalar_one()
        assert order.status == "processed" and order.details["before"] == "3" and order.details["after"] == "1"
        assert order.details["effective_at"] == f"{D}T00:00:00"
        change = db.session.execute(select(ScheduledUserChange)).scalar_one()
        assert change.order_id == order.id and change.closed_at is not None
    assert _actions(acct).count("plan.users_changed") == 1

    # Run again (a doubled tick, a retried job): nothing more.
    rows, balance = ledger_rows(), account(acct).balance
    _run(TID(world))
    assert ledger_rows() == rows and account(acct).balance == balance and _exts(acct) == before_exts[:1]
    with unscoped():
        assert db.session.execute(select(func.count()).select_from(Order).where(Order.kind == "users")).scalar_one() == 1
        assert balance_mismatches() == []


def test_a_run_that_fails_after_applying_rolls_the_change_back_and_the_next_run_applies_it_once(
        world, owner, acct, monkeypatch):
    from app.billing import cycle

    _change(owner, URL.format(acct), 2)
    before = _exts(acct)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")
    monkeypatch.setattr(cycle, "charge_accounts", broken)
    monkeypatch.setattr(cycle, "charge_account", broken)
    summary = _run(TID(world))
    assert summary["failed"] >= 1             # ours, and the world's other accounts of A
    assert _changes(acct) == [(2, "scheduled")] and _exts(acct) == before and _users(acct) == 3
    monkeypatch.undo()

    summary = _run(TID(world))             # the next tick retries the failed account
    assert summary["failed"] == 0
    assert _changes(acct) == [(2, "applied")] and _exts(acct) == before[:2] and _users(acct) == 2
    assert entries(acct)[f"account:{acct}:users:{NEXT}"] == Decimal("-10.00")
    with unscoped():
        assert db.session.execute(select(func.count()).select_from(Order).where(Order.kind == "users")).scalar_one() == 1
        assert balance_mismatches() == []


def test_a_retried_run_for_the_previous_period_still_charges_the_count_before_the_change(world, owner, acct):
    """users_at: the scheduled change counts as made just before its period starts, so an
    earlier period (retried after the change applied) keeps the old count."""
    from app.billing import cycle

    _change(owner, URL.format(acct), 1)
    _run(TID(world))                                    # January: applied, 1 user charged
    with unscoped():
        ctx = cycle._batch_context([acct])
        plan = ctx["plans"][acct]
        assert cycle.users_at(plan.users, ctx["changes"][acct], datetime.combine(NEXT_START, datetime.min.time())) == 1
        assert cycle.users_at(plan.users, ctx["changes"][acct], datetime.combine(TODAY.replace(day=1), datetime.min.time())) == 3
        assert cycle.users_at(plan.users, ctx["changes"][acct], datetime.combine(AFTER_NEXT, datetime.min.time())) == 1


def test_cancelling_from_the_account_page_keeps_the_users_and_the_run_charges_them_all(world, owner, acct):
    base = URL.format(acct)
    _change(owner, base, 1)
    with unscoped():
        change_id = db.session.execute(select(ScheduledUserChange.id)).scalar_one()
    resp = owner.post(f"{base}/users/scheduled/{change_id}/cancel", headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert "The change to 1 users is cancelled: the account keeps its 3 users." in html
    assert 'id="extensions"' in html and "Scheduled:" not in html
    assert _changes(acct) == [(1, "cancelled")]
    assert "plan.users_change_cancelled" in _actions(acct)

    # Cancelling again says so and changes nothing.
    before = row_counts()
    resp = owner.post(f"{base}/users/scheduled/{change_id}/cancel", headers={"HX-Request": "true"})
    assert resp.status_code == 409 and "was cancelled; nothing was cancelled" in resp.get_data(as_text=True)
    resp = owner.post(f"{base}/users/scheduled/{change_id}/cancel")
    assert resp.status_code == 303
    assert "was cancelled; nothing was cancelled" in owner.get(base).get_data(as_text=True)
    assert row_counts() == before

    exts = _exts(acct)
    _run(TID(world))
    assert _exts(acct) == exts and _users(acct) == 3
    assert entries(acct)[f"account:{acct}:users:{NEXT}"] == Decimal("-15.00")


def test_the_customer_schedules_sees_and_cancels_the_change_in_the_portal(world, customer, owner, acct):
    html = _change(customer, "/portal", 2)
    assert f"1 user removed on {D}" in html
    page = customer.get("/portal/users").get_data(as_text=True)
    assert f"Scheduled: you will have 2 users from {D}" in page        # the flash
    assert f"Scheduled: 3 → 2 users from {D}" in page and f"(removed on {D})" in page
    # The reseller sees it on the account page, too.
    assert f"Scheduled: 3 → 2 users from {D}" in owner.get(URL.format(acct)).get_data(as_text=True)
    with unscoped():
        change_id = db.session.execute(select(ScheduledUserChange.id)).scalar_one()
    resp = customer.post(f"/portal/users/scheduled/{change_id}/cancel", headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert "The change to 2 users is cancelled: you keep your 3 users." in html and "Scheduled: 3" not in html
    assert _changes(acct) == [(2, "cancelled")]


def test_a_change_scheduled_by_the_customer_is_cancelled_by_the_reseller(world, customer, owner, acct):
    _change(customer, "/portal", 1)
    with unscoped():
        change_id = db.session.execute(select(ScheduledUserChange.id)).scalar_one()
    assert owner.post(f"{URL.format(acct)}/users/scheduled/{change_id}/cancel").status_code == 303
    assert _changes(acct) == [(1, "cancelled")]
    assert "Scheduled: 3" not in customer.get("/portal/users").get_data(as_text=True)


def test_a_second_decrease_replaces_the_first(world, owner, acct):
    base = URL.format(acct)
    _change(owner, base, 2)
    html = _change(owner, base, 1)
    assert f"It replaces the change to 2 users scheduled for {D}." in html
    assert _changes(acct) == [(2, "replaced"), (1, "scheduled")]
    # Asking for the scheduled count again, or for today's, is refused with what to do.
    for users, message in ((1, f"A change to 1 user from {D} is already scheduled."),
                           (3, "To keep 3 users, cancel that change.")):
        resp = owner.post(base + "/users/preview", data={"users": str(users)})
        assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    _run(TID(world))
    assert _users(acct) == 1 and len(_exts(acct)) == 1
    assert _changes(acct) == [(2, "replaced"), (1, "applied")]


def test_only_one_change_waits_per_account(world, acct):
    with unscoped():
        for to in (2, 1):
            db.session.add(ScheduledUserChange(tenant_id=TID(world), account_id=acct, from_users=3, to_users=to,
                                               effective_on=NEXT_START, period=NEXT))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_an_increase_while_a_decrease_waits_replaces_it_and_is_charged_prorated(world, owner, acct):
    base = URL.format(acct)
    _change(owner, base, 1)
    balance = account(acct).balance
    html = _change(owner, base, 4)
    assert f"It cancels the change to 1 user scheduled for {D}." in html and "Charged now" in html
    charge = Decimal(_accepted(html)["accepted_charge"])
    assert charge > 0 and account(acct).balance == balance - charge
    assert _changes(acct) == [(1, "replaced")] and _users(acct) == 4 and len(_exts(acct)) == 4
    assert "plan.users_change_replaced" in _actions(acct)
    _run(TID(world))
    assert _users(acct) == 4 and entries(acct)[f"account:{acct}:users:{NEXT}"] == Decimal("-20.00")


def test_a_stale_preview_is_shown_again(world, owner, acct):
    """Previewed as scheduled, then the reseller switched to "at once": the accept is refused
    and the new terms (a credit now) are shown."""
    base = URL.format(acct)
    html = owner.post(base + "/users/preview", data={"users": "2"}).get_data(as_text=True)
    _set_immediate(TID(world))
    before = row_counts()
    resp = owner.post(base + "/users/apply", data=_accepted(html))
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert "Review the new charge" in page and "Credited now" in page
    assert row_counts() == before


def test_closing_the_account_cancels_the_waiting_change(world, owner, acct):
    from app.accounts.models import Account
    from app.accounts.operations import adjust_balance, close_account

    _change(owner, URL.format(acct), 1)
    with tenant_scope(TID(world)):
        a = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        adjust_balance(a, "reset", Decimal("0"), "closing", nonce="close-1")
        close_account(a, reason="customer left")
        db.session.commit()
    assert _changes(acct) == [(1, "cancelled")]


# --- at once, with a prorated credit -----------------------------------------------------------------

def _expected_credit(cost, removed, today, period_start, period_end):
    days, left = (period_end - period_start).days, (period_end - today).days
    return (Decimal(cost) * removed * left / days).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_at_once_the_newest_extensions_go_and_a_prorated_credit_is_posted(world, owner, acct):
    _set_immediate(TID(world))
    base = URL.format(acct)
    start, exts = account(acct).balance, _exts(acct)
    html = _change(owner, base, 1)
    first = TODAY.replace(day=1)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    credit = _expected_credit("5.00", 2, TODAY, first, nxt)
    assert f"Credited now: <strong>${credit}</strong>" in html and 'name="accepted_when" value="now"' in html
    assert Decimal(_accepted(html)["accepted_charge"]) == -credit
    assert _exts(acct) == exts[:1] and _users(acct) == 1 and _changes(acct) == []
    assert account(acct).balance == start + credit
    with unscoped():
        order_id = db.session.execute(select(Order.id).where(Order.kind == "users")).scalar_one()
    assert entries(acct, "user_charge")[f"account:{acct}:users:{first:%Y-%m}:order:{order_id}"] == credit
    with unscoped():
        assert balance_mismatches() == []

    # The same accept sent again (double click) credits nothing more.
    before = row_counts()
    resp = owner.post(base + "/users/apply", data=_accepted(html))
    assert resp.status_code in (409, 422) and row_counts() == before

    _run(TID(world))                                 # the next period: 1 user
    assert entries(acct)[f"account:{acct}:users:{NEXT}"] == Decimal("-5.00")


def test_the_credit_is_prorated_over_the_accounts_own_billing_period(world, acct):
    """Billed on the 15th: on Dec 20 the period is Dec 15 - Jan 14 (31 days), 26 days left."""
    from app.accounts.models import Account
    from app.billing import plans

    _set_immediate(TID(world))
    set_fields(acct, billing_day=15)
    now = datetime(2026, 12, 20, 9, tzinfo=timezone.utc)
    with tenant_scope(TID(world)):
        a = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        plan = plans.plan_of(acct)
        quote = plans.quote_user_change(a, plan, 2, now=now)
        assert quote.credit_now == Decimal("4.19")          # 5.00 x 26 / 31
        assert quote.proration.period == "2026-12-15" and quote.proration.days_left == 26
        balance = a.balance
        plans.apply_user_change(a, plan, 2, accepted_from=3, accepted_charge=Decimal("-4.19"), accepted_when="now",
                                now=now)
        db.session.commit()
    assert account(acct).balance == balance + Decimal("4.19")
    # The same account without the setting: scheduled for Jan 15, its next period.
    _set_immediate(TID(world), False)
    with tenant_scope(TID(world)):
        a = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        quote = plans.quote_user_change(a, plans.plan_of(acct), 1, now=now)
        assert quote.scheduled and quote.effective_on == date(2027, 1, 15) and quote.effective_period == "2027-01-15"


def test_a_daily_account_changes_the_next_day(world, acct):
    from datetime import timedelta

    from app.accounts.models import Account
    from app.billing import plans

    set_fields(acct, billing_schedule="daily", billing_day=1)
    day, after = TODAY + timedelta(days=1), TODAY + timedelta(days=2)
    now = datetime.combine(day, datetime.min.time()).replace(hour=9, tzinfo=timezone.utc)
    with tenant_scope(TID(world)):
        a = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        plan = plans.plan_of(acct)
        plans.apply_user_change(a, plan, 1, accepted_from=3, accepted_charge=Decimal("0"),
                                accepted_when=after.isoformat(), now=now)
        db.session.commit()
    _run(TID(world), key=day.isoformat(), now=f"{day.isoformat()}T12:00:00+00:00")
    assert _users(acct) == 3 and entries(acct)[f"account:{acct}:users:{day.isoformat()}"] == Decimal("-15.00")
    _run(TID(world), key=after.isoformat(), now=f"{after.isoformat()}T00:05:00+00:00")
    assert _users(acct) == 1 and len(_exts(acct)) == 1
    assert entries(acct)[f"account:{acct}:users:{after.isoformat()}"] == Decimal("-5.00")


# --- the reseller's setting ---------------------------------------------------------------------------

def test_the_owner_chooses_when_fewer_users_apply(world, owner, new_client, login, make_login):
    html = owner.get("/reseller/settings").get_data(as_text=True)
    assert "When an account lowers its number of users" in html and 'checked id="user_decrease-0"' in html
    resp = owner.post("/reseller/settings", data={"user_decrease": "now"})
    assert resp.status_code == 303
    with unscoped():
        assert db.session.execute(select(Tenant.user_decrease_immediate).where(Tenant.id == TID(world))).scalar_one()
        entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "reseller.user_decrease_mode")).scalar_one()
        assert entry.details == {"old": "next period", "new": "at once"}
    assert "fewer users apply at once" in owner.get("/reseller/settings").get_data(as_text=True)
    resp = owner.post("/reseller/settings", data={"user_decrease": "sometimes"})
    assert resp.status_code == 422 and "Not a valid choice" in resp.get_data(as_text=True)
    staff = login(new_client(), make_login(world.a, "reseller_staff"))
    assert staff.post("/reseller/settings", data={"user_decrease": "next_period"}).status_code == 403
    with unscoped():          # B's setting is its own
        assert not db.session.execute(select(Tenant.user_decrease_immediate).where(Tenant.id == TIDB(world))).scalar_one()


def test_two_runs_racing_apply_each_scheduled_change_once(app, make_tenant):
    """The same period run twice at once (two threads, each its own session, small batches):
    SKIP LOCKED shares the accounts, and each change is applied by exactly one of them."""
    import threading

    from app.accounts.operations import create_account

    tenant_id = make_tenant().id
    ids = []
    with unscoped():
        for i in range(30):
            a = create_account(tenant_id=tenant_id, name=f"Race {i}", email=f"race{i}@customer.example",
                               initial_credit=Decimal("50.00"))
            db.session.add(ServicePlan(tenant_id=tenant_id, account_id=a.id, name=f"Race plan {a.id}", users=3,
                                       cost_per_user=Decimal("1.00")))
            db.session.add(ScheduledUserChange(tenant_id=tenant_id, account_id=a.id, from_users=3, to_users=1,
                                               effective_on=NEXT_START, period=NEXT))
            ids.append(a.id)
        db.session.commit()
    db.session.remove()
    results, errors = [], []

    def run():
        try:
            with app.app_context():
                results.append(charge_period(tenant_id, NEXT, batch_size=4, pause=0.05, now=NEXT_NOW))
        except Exception as e:    # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2
    assert sum(r["this_job"] for r in results) == len(ids)
    assert all(r["this_job"] > 0 for r in results)          # they did run at once, sharing the accounts
    with unscoped():
        assert set(db.session.execute(select(ScheduledUserChange.status).where(
            ScheduledUserChange.account_id.in_(ids))).scalars()) == {"applied"}
        orders = dict(db.session.execute(select(Order.account_id, func.count()).where(
            Order.account_id.in_(ids), Order.kind == "users").group_by(Order.account_id)).all())
        assert orders == {a: 1 for a in ids}
        assert set(db.session.execute(select(ServicePlan.users).where(ServicePlan.account_id.in_(ids))).scalars()) == {1}
        assert balance_mismatches() == []
    for a in ids:
        assert entries(a, "user_charge") == {f"account:{a}:users:{NEXT}": Decimal("-1.00")}
