"""Page plumbing: htmx partials vs full pages, error pages, Vary."""


def test_a_normal_request_gets_the_full_page(world, client, login):
    login(client, world.owner_a)
    resp = client.get("/reseller/")
    assert b"<!doctype html>" in resp.data and b"htmx.min.js" in resp.data
    assert "HX-Request" in resp.headers["Vary"]


def test_an_htmx_request_gets_only_the_partial(world, client, login):
    login(client, world.owner_a)
    resp = client.get("/reseller/", headers={"HX-Request": "true"})
    assert resp.status_code == 200
    assert b"<!doctype html>" not in resp.data and b"Balances held" in resp.data


def test_a_history_restore_request_gets_the_full_page(world, client, login):
    login(client, world.owner_a)
    resp = client.get("/reseller/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"<!doctype html>" in resp.data


def test_not_found_is_a_full_page_or_a_partial(world, client, login):
    login(client, world.owner_a)
    full = client.get("/reseller/accounts/999999")
    assert full.status_code == 404 and b"<!doctype html>" in full.data and b"404" in full.data
    part = client.get("/reseller/accounts/999999", headers={"HX-Request": "true"})
    assert part.status_code == 404 and b"<!doctype html>" not in part.data and b"Not found" in part.data


def test_a_wrong_role_gets_a_403_page(world, client, login):
    login(client, world.customer_a)
    resp = client.get("/admin/")
    assert resp.status_code == 403 and b"Not allowed" in resp.data


def test_an_unexpected_error_is_a_500_page_not_a_traceback(app, world, client, login, monkeypatch):
    def boom():
        raise RuntimeError("kaboom")
    monkeypatch.setitem(app.view_functions, "reseller.dashboard", boom)
    login(client, world.owner_a)
    resp = client.get("/reseller/")
    assert resp.status_code == 500
    assert b"Something went wrong" in resp.data and b"kaboom" not in resp.data


def test_htmx_is_served_from_the_apps_own_static_files(client):
    resp = client.get("/static/vendor/htmx.min.js")
    assert resp.status_code == 200 and b"htmx" in resp.data[:2000]
    resp.close()
