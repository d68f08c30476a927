"""Fewer users in Chromium: the customer schedules a decrease for the next period, the reseller
sees it on the account page and cancels it (htmx asks first); with the reseller's setting "at
once", the preview offers a prorated credit instead."""
from datetime import date, datetime, timezone

from sqlalchemy import select

from app.billing.user_changes import ScheduledUserChange
from app.extensions import db
from app.logins.models import User
from tenants.scope import unscoped
from tests.integration.billing_support import billed_account

_today = datetime.now(timezone.utc).date()
# The account is billed monthly on day 1, in UTC: a decrease starts on the 1st of next month.
D = date(_today.year + _today.month // 12, _today.month % 12 + 1, 1).isoformat()


def _statuses():
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(ScheduledUserChange.status).order_by(ScheduledUserChange.id)).scalars().all()


def test_a_decrease_is_scheduled_in_the_portal_and_cancelled_on_the_account_page(world, page, browser_login, shot,
                                                                                 _browser, live_server):
    acct = billed_account(world.a, name="Quay Dental", users=3, cost_per_user="5.00", portal_password="customer-pass-1")
    owner_email = world.owner_a.email
    with unscoped():
        email = db.session.execute(select(User.email).where(User.account_id == acct)).scalar_one()

    browser_login(page, "portal", email, "customer-pass-1")
    page.click("nav >> text=Users")
    page.fill("input[name=users]", "1")
    page.click("button:has-text('See the charge')")
    quote = page.locator("#users-quote")
    quote.wait_for()
    assert f"2 users removed on {D}" in quote.inner_text()
    shot(page, "users-decrease-preview")
    quote.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=scheduled-users]")
    assert f"Scheduled: 3 → 1 users from {D}" in page.inner_text("[data-testid=scheduled-users]")
    assert "Until then all 3 users keep working" in page.inner_text("main")
    assert page.locator(f"text=(removed on {D})").count() == 2
    shot(page, "users-decrease-scheduled-portal")
    assert _statuses() == ["scheduled"]

    reseller = _browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860}).new_page()
    reseller.set_default_timeout(10_000)
    browser_login(reseller, "reseller", owner_email)
    reseller.goto(f"/reseller/accounts/{acct}#extensions")
    box = reseller.locator("#extensions [data-testid=scheduled-users]")
    assert f"Scheduled: 3 → 1 users from {D}" in box.inner_text()
    box.scroll_into_view_if_needed()
    shot(reseller, "users-decrease-scheduled-reseller", full_page=False)
    dialogs = []
    reseller.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    box.locator("text=Cancel this change").click()
    reseller.wait_for_selector("#extensions >> text=The change to 1 users is cancelled")
    assert dialogs and "keeps its 3 users" in dialogs[0]
    assert reseller.locator("[data-testid=scheduled-users]").count() == 0
    reseller.locator("#extensions").scroll_into_view_if_needed()
    shot(reseller, "users-decrease-cancelled-reseller", full_page=False)
    assert _statuses() == ["cancelled"]

    # The reseller lets decreases apply at once: the portal's preview offers a credit.
    reseller.goto("/reseller/settings")
    reseller.check("input[name=user_decrease][value=now]")
    reseller.locator("#user-decrease button[type=submit]").click()
    reseller.wait_for_selector("text=fewer users apply at once")
    shot(reseller, "users-decrease-setting")
    page.goto("/portal/users")
    page.fill("input[name=users]", "2")
    page.click("button:has-text('See the charge')")
    quote = page.locator("#users-quote")
    quote.wait_for()
    assert "1 user removed at once" in quote.inner_text() and "Credited now" in quote.inner_text()
    shot(page, "users-decrease-at-once-preview")
