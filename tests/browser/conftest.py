"""Browser tests: the real pages in Debian's chromium, driven by Playwright.

`live_server` serves the test app (PostgreSQL, CSRF on) from a thread; `page` is a fresh
browser page; `shot(page, name)` saves a screenshot under test-artifacts/screenshots/.
"""
import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def _browser():
    # Module-scoped: a running sync Playwright keeps an event loop on this thread, which would
    # break asyncio.run() in the AMI tests sharing the process; stop it after each module.
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Debian chromium is missing (scripts/setup --test installs it)", pytrace=False)
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def live_server(app):
    app.config["WTF_CSRF_ENABLED"] = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture
def page(_browser, live_server):
    context = _browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(pg, name, full_page=True):
        path = ARTIFACTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=full_page)
        return path
    return take


@pytest.fixture
def browser_login():
    from tests.conftest import PASSWORD

    def do(pg, portal, email, password=PASSWORD):
        pg.goto(f"/{portal}/login")
        pg.fill("input[name=email]", email)
        pg.fill("input[name=password]", password)
        pg.click("main button[type=submit]")
        return pg
    return do
