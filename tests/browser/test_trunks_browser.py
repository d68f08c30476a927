"""Customer IP trunks on the account page and the limits view, in a real browser (issue 19, point 7)."""


def test_reseller_adds_a_trunk_and_finds_it_in_the_limits_view(world, page, browser_login, shot):
    browser_login(page, "reseller", world.owner_a.email)
    page.goto(f"/reseller/accounts/{world.account_a.id}")
    page.wait_for_selector("#trunks form")                      # the section loads by htmx
    page.fill("#trunks input[name=name]", "Office PBX")
    page.fill("#trunks textarea[name=hosts]", "203.0.113.7/24")
    page.fill("#trunks input[name=call_limit]", "4")
    page.fill("#trunks input[name=cps_limit]", "2")
    page.click("#trunks button:has-text('Add trunk')")
    page.wait_for_selector("#hosts-error")
    assert "has host bits set" in page.inner_text("#hosts-error")
    page.locator("#trunks").screenshot(path=str(_artifact("reseller-trunk-error")))
    page.fill("#trunks textarea[name=hosts]", "203.0.113.0/24 198.51.100.9")
    page.click("#trunks button:has-text('Add trunk')")
    page.wait_for_selector("#trunk-table >> text=Office PBX")
    assert "198.51.100.9" in page.inner_text("#trunk-table")
    page.locator("#trunks").screenshot(path=str(_artifact("reseller-trunks")))

    page.goto("/reseller/limits")
    page.locator("#q").press_sequentially("198.51")
    page.wait_for_function("() => location.search.includes('q=198.51')")   # htmx search as you type
    page.wait_for_function("() => !document.querySelector('#limits').innerText.includes('Warehouse')"
                           " && document.querySelectorAll('#limits tbody tr').length === 1")
    text = page.inner_text("#limits")
    assert "Office PBX" in text and world.account_a2.name not in text
    shot(page, "reseller-limits")


def _artifact(name):
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"
