"""Live calls on the accounts list and the account page (issue 20, point 3): counts read from
the watchers' shares in Redis, refreshed by polling one small scoped endpoint, and a recount
request that reaches the watchers on their notice channel after the commit."""
import re
import time

from sqlalchemy import select

from app.audit import AuditEntry
from app.calls import live
from app.extensions import db
from app.jobs import redis_connection
from tenants.scope import unscoped


def _share(app, counts):
    conn = redis_connection(app)
    conn.sadd("inuse:servers", "ast1")
    conn.set("inuse:ast1:alive", 1, ex=60)
    conn.delete("inuse:ast1:account")
    if counts:
        conn.hset("inuse:ast1:account", mapping=counts)


def test_the_list_shows_live_calls_per_account_and_polls_for_fresh_counts(app, world, new_client, login):
    _share(app, {world.account_a.account_number: 3})
    owner = login(new_client(), world.owner_a)
    html = owner.get("/reseller/accounts").get_data(as_text=True)
    assert re.search(rf'<span id="in-use-{world.account_a.id}" class="in-use live">3</span>', html)
    assert re.search(rf'<span id="in-use-{world.account_a2.id}" class="in-use">0</span>', html)
    poll = re.search(r'hx-get="(/reseller/accounts/in-use\?ids=[^"]+)"\s+hx-trigger="every \d+s"', html).group(1)
    _share(app, {world.account_a.account_number: 1, world.account_a2.account_number: 2})
    fresh = owner.get(poll.replace("&amp;", "&")).get_data(as_text=True)
    assert re.search(rf'id="in-use-{world.account_a.id}" class="in-use live" hx-swap-oob="true">1<', fresh)
    assert re.search(rf'id="in-use-{world.account_a2.id}" class="in-use live" hx-swap-oob="true">2<', fresh)


def test_in_use_is_a_column_that_cannot_be_sorted(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    html = owner.get("/reseller/accounts?sort=in_use").get_data(as_text=True)
    assert "Cannot sort by that; sorted by name instead." in html
    assert re.search(r'<th scope="col" class="num">In use</th>', html)


def test_polling_answers_only_for_accounts_in_scope(app, world, new_client, login):
    _share(app, {world.account_b.account_number: 4})
    owner = login(new_client(), world.owner_a)
    body = owner.get(f"/reseller/accounts/in-use?ids={world.account_a.id},{world.account_b.id}").get_data(as_text=True)
    assert f"in-use-{world.account_a.id}" in body
    assert f"in-use-{world.account_b.id}" not in body          # another reseller's: silently left out
    assert owner.get("/reseller/accounts/in-use?ids=1,x").status_code == 400


def test_without_redis_the_counts_show_a_dash(app, world, new_client, login):
    from redis import Redis

    saved = app.extensions.get("ringledger_redis")
    app.extensions["ringledger_redis"] = Redis.from_url("redis://127.0.0.1:1/0")   # nothing listens there
    try:
        owner = login(new_client(), world.owner_a)
        body = owner.get(f"/reseller/accounts/in-use?ids={world.account_a.id}").get_data(as_text=True)
    finally:
        app.extensions["ringledger_redis"] = saved
    assert re.search(r'hx-swap-oob="true">—<', body)


def test_recount_publishes_after_the_commit_and_is_in_the_history(app, world, new_client, login):
    conn = redis_connection(app)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.CHANNEL)
    owner = login(new_client(), world.owner_a)
    resp = owner.post(f"/reseller/in-use/recount?next=/reseller/accounts/{world.account_a.id}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/reseller/accounts/{world.account_a.id}")
    # Pub/sub channels are server-wide: other test processes' notices may come first.
    deadline, got = time.monotonic() + 3, []
    while b"recount" not in got and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message:
            got.append(message["data"])
    assert b"recount" in got
    with unscoped():
        entry = db.session.execute(select(AuditEntry).where(AuditEntry.action == "calls.recount_requested")).scalar_one()
    assert entry.tenant_id == world.a.id and entry.actor_email == world.owner_a.email
    # somewhere outside the portal is never a redirect target
    resp = owner.post("/reseller/in-use/recount?next=https://evil.example/")
    assert resp.headers["Location"].endswith("/reseller/accounts")
    pubsub.close()


def test_a_read_only_login_sees_counts_but_cannot_ask_for_a_recount(world, new_client, login, make_login):
    reader = login(new_client(), make_login(world.a, "reseller_readonly"))
    html = reader.get(f"/reseller/accounts/{world.account_a.id}").get_data(as_text=True)
    assert f'id="in-use-{world.account_a.id}"' in html and "/reseller/in-use/recount" not in html
    assert reader.post("/reseller/in-use/recount").status_code == 403
