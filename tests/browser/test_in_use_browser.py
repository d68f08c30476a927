"""Live calls in Chromium: the accounts list and the account page refresh their in-use counts
by themselves (htmx polling, out-of-band swaps), without reloading the page."""
from app.jobs import redis_connection


def _share(app, counts):
    conn = redis_connection(app)
    conn.sadd("inuse:servers", "ast1")
    conn.set("inuse:ast1:alive", 1, ex=60)
    conn.delete("inuse:ast1:account")
    if counts:
        conn.hset("inuse:ast1:account", mapping=counts)


def test_in_use_counts_follow_the_switch_without_a_reload(app, world, page, browser_login, shot, monkeypatch):
    monkeypatch.setitem(app.config, "IN_USE_POLL_SECONDS", 1)
    a, a2 = world.account_a, world.account_a2
    _share(app, {a.account_number: 2})
    browser_login(page, "reseller", world.owner_a.email)
    page.goto("/reseller/accounts")
    assert page.locator(f"#in-use-{a.id}").inner_text() == "2"
    assert page.locator(f"#in-use-{a2.id}").inner_text() == "0"
    page.evaluate("window.__marker = 1")                      # gone if the page reloads
    _share(app, {a.account_number: 1, a2.account_number: 3})
    page.wait_for_function(f"document.getElementById('in-use-{a2.id}').textContent.trim() === '3'", timeout=8_000)
    assert page.locator(f"#in-use-{a.id}").inner_text() == "1"
    assert page.evaluate("window.__marker") == 1
    shot(page, "reseller-accounts-in-use")
    page.goto(f"/reseller/accounts/{a2.id}")
    assert page.locator(f"#in-use-{a2.id}").inner_text() == "3"
    _share(app, {})
    page.wait_for_function(f"document.getElementById('in-use-{a2.id}').textContent.trim() === '0'", timeout=8_000)
    page.click("text=Recount")
    page.wait_for_selector("text=Asked the switches for their live calls")
    shot(page, "reseller-account-in-use-recount", full_page=False)
