"""The reseller's account list: search, filters, sort, pages, columns, bulk status, access."""
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.audit import AuditEntry
from app.billing.models import ServicePlan
from app.extensions import db
from app.logins.preferences import UserPreference
from app.numbers.models import Number
from provisioning.models import Extension
from tenants.scope import unscoped

LIST = "/reseller/accounts"


def ids_listed(resp) -> list[int]:
    """Account ids in the order the page lists them (the row checkboxes)."""
    assert resp.status_code == 200, resp.status_code
    return [int(i) for i in re.findall(rb'name="ids" value="(\d+)"', resp.data)]


def headings(resp) -> list[str]:
    return [h.decode() for h in re.findall(rb'title="Sort by ([^"]+)"', resp.data)]


def set_fields(account, **fields):
    with unscoped():
        row = db.session.execute(select(Account).where(Account.id == account.id)).scalar_one()
        for k, v in fields.items():
            setattr(row, k, v)
        db.session.commit()


def status_of(account_id) -> str:
    with unscoped():
        return db.session.execute(select(Account.status).where(Account.id == account_id)).scalar_one()


@pytest.fixture
def owner(world, client, login):
    """A client logged in as reseller A's owner (A has a sub-reseller, A North)."""
    return login(client, world.owner_a)


# --- who sees what ----------------------------------------------------------------------------

def test_a_reseller_lists_its_own_and_its_sub_resellers_accounts_only(world, owner):
    resp = owner.get(LIST)
    assert set(ids_listed(resp)) == {world.account_a.id, world.account_a2.id, world.account_a_sub.id}
    assert world.account_b.account_number.encode() not in resp.data
    assert b"Showing 1\xe2\x80\x933 of 3 accounts" in resp.data  # the total counts the scope only
    # A parent reseller sees whose account it is.
    assert b"Reseller A North" in resp.data and "reseller" in headings(resp)


def test_another_resellers_accounts_are_never_listed_even_when_searched_for(world, owner):
    for q in (world.account_b.account_number, world.account_b.email, world.account_b.name):
        assert ids_listed(owner.get(LIST, query_string={"q": q})) == []


def test_a_sub_reseller_never_lists_its_parents_accounts(world, client, login):
    login(client, world.owner_a_sub)
    resp = client.get(LIST)
    assert ids_listed(resp) == [world.account_a_sub.id]
    assert "reseller" not in headings(resp)  # one tenant in scope: the column is not needed


def test_reseller_staff_may_use_the_list(world, client, login):
    login(client, world.staff_a)
    assert len(ids_listed(client.get(LIST))) == 3


@pytest.mark.parametrize("method,url", [
    ("GET", LIST), ("POST", LIST + "/bulk"), ("POST", LIST + "/columns"),
])
def test_a_customer_login_gets_403(world, client, login, method, url):
    login(client, world.customer_a)
    assert client.open(url, method=method, data={"ids": [world.account_a.id], "action": "deactivate"}).status_code == 403
    assert status_of(world.account_a.id) == "active"


@pytest.mark.parametrize("method,url", [
    ("GET", LIST), ("POST", LIST + "/bulk"), ("POST", LIST + "/columns"),
])
def test_an_anonymous_visitor_is_sent_to_the_reseller_login(world, client, method, url):
    resp = client.open(url, method=method, data={"ids": [world.account_a.id], "action": "deactivate"})
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/reseller/login")
    assert status_of(world.account_a.id) == "active"


def test_a_platform_admin_login_gets_403_in_the_reseller_portal(world, client, login):
    login(client, world.admin)
    assert client.get(LIST).status_code == 403


# --- search -------------------------------------------------------------------------------------

@pytest.fixture
def searchable(world, make_account):
    harbour = make_account(world.a, name="Harbour Cafe", company="Quayside Holdings",
                           email="Office@HarbourCafe.example")
    nord = make_account(world.a, name="Nord Law", company="Fjord Partners", email="it@nordlaw.example")
    return harbour, nord


@pytest.mark.parametrize("q,expected", [
    ("Harbour", "harbour"),            # name
    ("harb", "harbour"),               # name, prefix, other case
    ("HARBOUR CA", "harbour"),         # several words of the name
    ("quayside", "harbour"),           # company
    ("Fjord P", "nord"),               # company, prefix
    ("office@harbour", "harbour"),     # email prefix, stored with capitals
    ("it@nordlaw.example", "nord"),    # whole email
])
def test_one_box_searches_name_company_and_email(searchable, owner, q, expected):
    harbour, nord = searchable
    want = {"harbour": harbour, "nord": nord}[expected]
    assert ids_listed(owner.get(LIST, query_string={"q": q})) == [want.id]


def test_the_search_box_finds_an_account_by_its_number_or_its_first_digits(world, owner):
    number = world.account_a2.account_number
    assert ids_listed(owner.get(LIST, query_string={"q": number})) == [world.account_a2.id]
    found = ids_listed(owner.get(LIST, query_string={"q": number[:6]}))
    assert world.account_a2.id in found


def test_search_matches_any_part_of_name_company_and_email_from_three_characters(searchable, owner):
    harbour, nord = searchable
    assert ids_listed(owner.get(LIST, query_string={"q": "cafe"})) == [harbour.id]      # "Harbour Cafe"
    assert ids_listed(owner.get(LIST, query_string={"q": "ARBOU"})) == [harbour.id]
    assert ids_listed(owner.get(LIST, query_string={"q": "ca"})) == []                   # short: starts-with
    assert ids_listed(owner.get(LIST, query_string={"q": "ha"})) == [harbour.id]


@pytest.mark.parametrize("q", ["%", "_", "\\", "%harbour", "' OR 1=1 --"])
def test_like_wildcards_and_quotes_in_the_search_are_literal(searchable, owner, q):
    assert ids_listed(owner.get(LIST, query_string={"q": q})) == []


def test_a_search_with_no_match_says_so(searchable, owner):
    resp = owner.get(LIST, query_string={"q": "zzz"})
    assert ids_listed(resp) == [] and b"No accounts match" in resp.data


# --- filters ------------------------------------------------------------------------------------

@pytest.fixture
def mixed(world, make_account):
    """A's accounts: a (active), a2 disabled, a_sub suspended, plus closed and postpaid ones."""
    set_fields(world.account_a2, status="disabled")
    set_fields(world.account_a_sub, status="suspended")
    closed = make_account(world.a, name="Closed Co")
    set_fields(closed, status="closed")
    post = make_account(world.a, name="Post Co", billing_type="postpaid", credit_limit=Decimal("300"))
    return closed, post


@pytest.mark.parametrize("status,expected", [
    ("", {"a", "a2", "a_sub", "closed", "post"}),
    ("all_active", {"a", "post"}),
    ("all_inactive", {"a2", "a_sub", "closed"}),
    ("active", {"a", "post"}),
    ("disabled", {"a2"}),
    ("suspended", {"a_sub"}),
    ("closed", {"closed"}),
])
def test_the_status_filter(world, mixed, owner, status, expected):
    closed, post = mixed
    names = {world.account_a.id: "a", world.account_a2.id: "a2", world.account_a_sub.id: "a_sub",
             closed.id: "closed", post.id: "post"}
    listed = ids_listed(owner.get(LIST, query_string={"status": status}))
    assert {names[i] for i in listed} == expected


def test_the_terms_filter(world, mixed, owner):
    closed, post = mixed
    assert ids_listed(owner.get(LIST, query_string={"terms": "postpaid"})) == [post.id]
    assert post.id not in ids_listed(owner.get(LIST, query_string={"terms": "prepaid"}))


def test_search_and_filters_combine(world, mixed, owner):
    closed, post = mixed
    assert ids_listed(owner.get(LIST, query_string={"q": "post", "terms": "postpaid", "status": "all_active"})) == [post.id]
    assert ids_listed(owner.get(LIST, query_string={"q": "post", "status": "all_inactive"})) == []


# --- sorting ------------------------------------------------------------------------------------

@pytest.fixture
def sortable(world, make_account):
    """Three accounts of reseller A North (a scope of its own) with distinct values per column."""
    t = world.a_sub
    x = make_account(t, name="Bravo", company="Zulu Ltd", email="bravo@x.example", credit_limit=Decimal("50"),
                     billing_type="postpaid")
    y = make_account(t, name="Alpha", company="Yankee Ltd", email="alpha@y.example", credit_limit=Decimal("10"))
    z = make_account(t, name="Charlie", company="Xray Ltd", email="charlie@z.example", credit_limit=Decimal("30"),
                     billing_type="postpaid")
    set_fields(y, status="suspended")
    with unscoped():
        db.session.add_all([
            ServicePlan(tenant_id=t.id, account_id=x.id, name="Plan X", users=5),
            ServicePlan(tenant_id=t.id, account_id=z.id, name="Plan Z", users=2),
            Extension(tenant_id=t.id, account_id=y.id, number="3001", sip_username="y1", sip_secret="s" * 20),
            Extension(tenant_id=t.id, account_id=y.id, number="3002", sip_username="y2", sip_secret="s" * 20),
            Extension(tenant_id=t.id, account_id=z.id, number="3003", sip_username="z1", sip_secret="s" * 20),
            Number(tenant_id=t.id, account_id=z.id, number="+442071230001", country="GB", status="assigned"),
            Number(tenant_id=t.id, account_id=z.id, number="+442071230002", country="GB", status="assigned"),
            Number(tenant_id=t.id, account_id=x.id, number="+442071230003", country="GB", status="assigned"),
            Number(tenant_id=t.id, number="+442071230004", country="GB", status="spare"),
        ])
        db.session.commit()
    # the fixture's own account of A North (Account 3, balance 7) is the fourth row
    return x, y, z


@pytest.mark.parametrize("sort", ["name", "company", "credit_limit", "terms", "users", "numbers", "extensions"])
def test_sorting_by_each_column_both_ways(world, sortable, client, login, sort):
    x, y, z = sortable
    w = world.account_a_sub
    login(client, world.owner_a_sub)
    expected = _expected_order(sort, w, x, y, z)
    assert ids_listed(client.get(LIST, query_string={"sort": sort, "dir": "asc"})) == expected
    assert ids_listed(client.get(LIST, query_string={"sort": sort, "dir": "desc"})) == expected[::-1]
    # the same order inside a search (which filters first, then sorts)
    assert ids_listed(client.get(LIST, query_string={"sort": sort, "q": "a"})) == [
        i for i in expected if i in (w.id, y.id)]


def test_the_sorting_fixture_has_distinct_counts(world, sortable, client, login):
    x, y, z = sortable
    login(client, world.owner_a_sub)
    client.post(LIST + "/columns", data={"columns": ["users", "numbers", "extensions"]})
    rows = re.findall(rb'value="(\d+)" aria-label="Select \d+"></td><td><a[^>]*>\d+</a></td>'
                      rb'<td class="num">(\d+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>',
                      client.get(LIST).data)
    got = {int(i): (int(u), int(n), int(e)) for i, u, n, e in rows}
    assert got == {world.account_a_sub.id: (0, 0, 0), x.id: (5, 1, 0), y.id: (0, 0, 2), z.id: (2, 2, 1)}


def _expected_order(sort, w, x, y, z):
    """Compute the order from the data itself, with the id as tiebreak, to keep tests honest."""
    with unscoped():
        rows = {a.id: a for a in db.session.execute(
            select(Account).where(Account.id.in_([w.id, x.id, y.id, z.id]))).scalars()}
        users = dict(db.session.execute(select(ServicePlan.account_id, ServicePlan.users)).all())
        exts, nums = {}, {}
        for (aid,) in db.session.execute(select(Extension.account_id)):
            exts[aid] = exts.get(aid, 0) + 1
        for (aid,) in db.session.execute(select(Number.account_id).where(Number.account_id.is_not(None))):
            nums[aid] = nums.get(aid, 0) + 1
    key = {
        "name": lambda a: a.name, "company": lambda a: a.company, "credit_limit": lambda a: a.credit_limit,
        "terms": lambda a: a.billing_type, "users": lambda a: users.get(a.id, 0),
        "numbers": lambda a: nums.get(a.id, 0), "extensions": lambda a: exts.get(a.id, 0),
    }[sort]
    return [a.id for a in sorted(rows.values(), key=lambda a: (key(a), a.id))]


def test_equal_values_are_ordered_by_id_both_ways(world, make_account, owner):
    same = [make_account(world.a, name="Same Name") for _ in range(4)]
    ids = [a.id for a in same]
    assert ids_listed(owner.get(LIST, query_string={"q": "same name", "sort": "name"})) == ids
    assert ids_listed(owner.get(LIST, query_string={"q": "same name", "sort": "name", "dir": "desc"})) == ids[::-1]


def test_sort_by_balance_and_status(world, owner):
    # balances from the fixture: a 10, a2 5, a_sub 7
    assert ids_listed(owner.get(LIST, query_string={"sort": "balance"})) == [
        world.account_a2.id, world.account_a_sub.id, world.account_a.id]
    set_fields(world.account_a2, status="disabled")
    listed = ids_listed(owner.get(LIST, query_string={"sort": "status", "dir": "desc"}))
    assert listed[0] == world.account_a2.id  # "disabled" < "active": first when descending


# --- pages and bad input ---------------------------------------------------------------------

@pytest.fixture
def many(world, make_account):
    """23 accounts for reseller B (so no sub-reseller in the way), names in a known order."""
    return [make_account(world.b, name=f"Bulk {n:02d}") for n in range(23)] + [world.account_b]


def test_pages_split_the_list_and_say_where_you_are(world, many, client, login):
    login(client, world.owner_b)
    first = client.get(LIST, query_string={"size": 10, "q": "bulk"})
    assert len(ids_listed(first)) == 10 and b"Showing 1\xe2\x80\x9310 of 23" in first.data
    third = client.get(LIST, query_string={"size": 10, "q": "bulk", "page": 3})
    assert ids_listed(third) == [a.id for a in many[20:23]]
    assert b"Showing 21\xe2\x80\x9323 of 23" in third.data
    # the links keep the query and the size
    assert b'href="/reseller/accounts?q=bulk&amp;size=10&amp;page=2"' in third.data


@pytest.mark.parametrize("args,rows,notice", [
    ({"page": "abc"}, 24, "Page must be a number"),
    ({"page": "0"}, 24, "Pages start at 1"),
    ({"page": "-3"}, 24, "Pages start at 1"),
    ({"page": "999", "size": "10"}, 4, "only 3 pages"),
    ({"page": "99999999999999999999999"}, 24, "only 1 page"),
    ({"size": "1000"}, 24, "At most 100"),
    ({"size": "30"}, 24, "showing 50"),
    ({"size": "-5"}, 10, "showing 10"),
    ({"size": "lots"}, 24, "showing 25"),
    ({"sort": "evil; DROP TABLE accounts"}, 24, "Cannot sort by that"),
    ({"sort": "password_hash"}, 24, "Cannot sort by that"),
    ({"dir": "sideways"}, 24, "asc or desc"),
    ({"status": "deleted"}, 24, "Unknown status filter"),
    ({"terms": "free"}, 24, "Unknown terms filter"),
    ({"q": "b" * 500}, 0, "first 100 characters"),
])
def test_bad_query_input_falls_back_with_a_message_never_a_500(world, many, client, login, args, rows, notice):
    login(client, world.owner_b)
    resp = client.get(LIST, query_string=args)
    assert resp.status_code == 200
    assert len(ids_listed(resp)) == rows
    assert notice.encode() in resp.data


def test_control_characters_in_the_search_do_not_break_the_query(world, many, client, login):
    login(client, world.owner_b)
    resp = client.get(LIST, query_string={"q": "bulk\x00 01"})
    assert resp.status_code == 200


def test_an_empty_list_has_no_pager_and_says_so(world, client, login, make_tenant, make_login):
    empty = make_tenant("Empty Reseller")
    login(client, make_login(empty))
    resp = client.get(LIST)
    assert ids_listed(resp) == [] and b"No accounts yet" in resp.data and b'aria-label="Pages"' not in resp.data


# --- htmx ---------------------------------------------------------------------------------------

def test_the_query_form_works_with_and_without_htmx(world, owner):
    full = owner.get(LIST, query_string={"q": "account"})
    assert b"<!doctype html>" in full.data
    assert b'method="get" action="/reseller/accounts"' in full.data           # a plain form
    assert b'hx-get="/reseller/accounts"' in full.data and b'hx-push-url="true"' in full.data
    assert b'hx-select="#account-results"' in full.data
    part = owner.get(LIST, query_string={"q": "account"}, headers={"HX-Request": "true"})
    assert b"<!doctype html>" not in part.data and b'id="account-results"' in part.data
    assert ids_listed(part) == ids_listed(full)
    assert "HX-Request" in part.headers["Vary"]


def test_a_history_restore_gets_the_full_page(world, owner):
    resp = owner.get(LIST, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"<!doctype html>" in resp.data


# --- columns ------------------------------------------------------------------------------------

def test_hidden_columns_are_remembered_for_that_login_only(world, new_client, login):
    owner = login(new_client(), world.owner_a)
    staff = login(new_client(), world.staff_a)
    default = headings(owner.get(LIST))
    assert "company" in default and "email" not in default

    resp = owner.post(LIST + "/columns", data={"columns": ["name", "email", "balance", "nonsense"],
                                               "next": "/reseller/accounts?q=acc"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/reseller/accounts?q=acc"

    again = headings(owner.get(LIST))
    assert again == ["account number", "name", "email", "balance"]   # the number always shows
    assert headings(owner.get(LIST, query_string={"page": 1})) == again  # on every later request
    assert headings(staff.get(LIST)) == default                        # a colleague is unaffected
    with unscoped():
        prefs = db.session.execute(select(UserPreference)).scalars().all()
    assert [(p.user_id, p.tenant_id) for p in prefs] == [(world.owner_a.id, world.a.id)]

    owner.post(LIST + "/columns", data={"reset": "1"})
    assert headings(owner.get(LIST)) == default


def test_the_column_form_never_redirects_off_the_list(world, owner):
    for nxt in ("https://evil.example/", "//evil.example/reseller/accounts", "/reseller/staff"):
        resp = owner.post(LIST + "/columns", data={"columns": ["name"], "next": nxt})
        assert resp.headers["Location"] == "/reseller/accounts"


def test_hiding_every_column_still_shows_the_account_number(world, owner):
    owner.post(LIST + "/columns", data={})
    assert headings(owner.get(LIST)) == ["account number"]


# --- bulk activate / deactivate -------------------------------------------------------------------

def audit_actions():
    with unscoped():
        return sorted((e.action, e.object_id, e.tenant_id) for e in db.session.execute(
            select(AuditEntry).where(AuditEntry.action.in_(("account.enabled", "account.disabled")))).scalars())


CONFIRMED = {"reason": "unpaid", "confirm": "1"}   # deactivating asks why, and a tick


def test_bulk_deactivate_then_activate_selected_accounts(world, owner):
    a, sub = world.account_a, world.account_a_sub
    resp = owner.post(LIST + "/bulk", data={"action": "deactivate", "ids": [a.id, sub.id], **CONFIRMED,
                                            "next": "/reseller/accounts?status=all_active"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/reseller/accounts?status=all_active"
    assert status_of(a.id) == status_of(sub.id) == "disabled"
    assert status_of(world.account_a2.id) == "active"
    assert audit_actions() == sorted([("account.disabled", a.id, world.a.id),
                                      ("account.disabled", sub.id, world.a_sub.id)])
    page = owner.get(resp.headers["Location"])
    assert b"2 accounts deactivated." in page.data

    owner.post(LIST + "/bulk", data={"action": "activate", "ids": [a.id]})
    assert status_of(a.id) == "active" and status_of(sub.id) == "disabled"
    assert b"1 account activated." in owner.get(LIST).data


def test_bulk_ids_of_another_reseller_are_silently_not_touched(world, owner):
    resp = owner.post(LIST + "/bulk", data={"action": "deactivate", **CONFIRMED,
                                            "ids": [world.account_b.id, world.account_a.id, 999999]})
    assert resp.status_code == 303
    assert status_of(world.account_b.id) == "active"
    assert status_of(world.account_a.id) == "disabled"
    assert [o for _, o, _ in audit_actions()] == [world.account_a.id]
    page = owner.get(LIST).data
    assert b"1 account deactivated. 2 of the selected were not changed" in page
    assert world.account_b.account_number.encode() not in page


def test_a_sub_reseller_cannot_bulk_change_its_parents_accounts(world, client, login):
    login(client, world.owner_a_sub)
    client.post(LIST + "/bulk", data={"action": "deactivate", "ids": [world.account_a.id], **CONFIRMED})
    assert status_of(world.account_a.id) == "active"


def test_bulk_leaves_closed_accounts_and_accounts_already_in_that_state(world, owner):
    set_fields(world.account_a2, status="closed")
    owner.post(LIST + "/bulk", data={"action": "activate", "ids": [world.account_a.id, world.account_a2.id]})
    assert status_of(world.account_a2.id) == "closed"
    assert audit_actions() == []
    assert b"0 accounts activated. 2 of the selected were not changed" in owner.get(LIST).data


@pytest.mark.parametrize("data,message", [
    ({"action": "deactivate"}, b"Select at least one account."),
    ({"action": "deactivate", "ids": ["x", "", "-4"]}, b"Select at least one account."),
    ({"action": "deactivate", "ids": ["99999999999", "1e3"]}, b"Select at least one account."),
    ({"action": "delete", "ids": ["1"]}, b"Choose activate or deactivate."),
    ({"ids": ["1"]}, b"Choose activate or deactivate."),
])
def test_bulk_bad_input_changes_nothing_and_says_why(world, owner, data, message):
    resp = owner.post(LIST + "/bulk", data=data)
    assert resp.status_code == 303
    assert message in owner.get(LIST).data
    assert audit_actions() == []
    assert status_of(world.account_a.id) == "active"


def test_bulk_through_htmx_swaps_the_results_with_the_message(world, owner):
    resp = owner.post(LIST + "/bulk", data={"action": "deactivate", "ids": [world.account_a.id], **CONFIRMED},
                      headers={"HX-Request": "true"}, follow_redirects=True)
    assert resp.status_code == 200 and b"<!doctype html>" not in resp.data
    assert b"1 account deactivated." in resp.data and b'id="account-results"' in resp.data


def test_bulk_needs_the_csrf_token(app, world, owner):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        resp = owner.post(LIST + "/bulk", data={"action": "deactivate", "ids": [world.account_a.id]})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert resp.status_code == 400
    assert status_of(world.account_a.id) == "active"


# --- the capped count ---------------------------------------------------------------------------

def test_past_the_count_cap_the_list_says_more_than_and_keeps_paging(world, many, client, login, monkeypatch):
    from app.accounts import listing as account_list

    monkeypatch.setattr(account_list, "COUNT_CAP", 15)
    login(client, world.owner_b)
    first = client.get(LIST, query_string={"size": 10})
    assert b"Showing 1\xe2\x80\x9310 of more than 15 accounts" in first.data and len(ids_listed(first)) == 10
    assert b'rel="next"' in first.data
    assert b'aria-label="Page 3"' not in first.data        # no last page: the count stopped early
    second = client.get(LIST, query_string={"size": 10, "page": 2})
    assert b"Showing 11\xe2\x80\x9320 of more than 20 accounts" in second.data
    by_name = [world.account_b.id] + [a.id for a in many[:-1]]   # "Account …" sorts before "Bulk …"
    assert ids_listed(second) == by_name[10:20] and b'rel="next"' in second.data
    # the last page knows the exact total by itself
    third = client.get(LIST, query_string={"size": 10, "page": 3})
    assert b"Showing 21\xe2\x80\x9324 of 24 accounts" in third.data and len(ids_listed(third)) == 4
    assert b'rel="next"' not in third.data
    # past the end: counted once exactly, then the last page
    beyond = client.get(LIST, query_string={"size": 10, "page": 9})
    assert b"only 3 pages" in beyond.data and ids_listed(beyond) == ids_listed(third)
    # a search under the cap is exact again
    assert b"more than" not in client.get(LIST, query_string={"q": "bulk 0"}).data


def test_names_in_the_list_are_links_to_the_account(searchable, owner):
    harbour, _ = searchable
    html = owner.get(LIST, query_string={"q": "harbour"}).get_data(as_text=True)
    assert f'<a href="/reseller/accounts/{harbour.id}">Harbour Cafe</a>' in html


def test_the_per_minute_report_finds_an_account_by_name_as_well_as_number(searchable, owner, make_account, world):
    harbour, nord = searchable
    by_number = owner.get("/reseller/reports/per-minute", query_string={"account": harbour.account_number})
    assert by_number.status_code == 303 and f"/accounts/{harbour.id}/per-minute" in by_number.headers["Location"]
    by_name = owner.get("/reseller/reports/per-minute", query_string={"account": "nord law"})
    assert by_name.status_code == 303 and f"/accounts/{nord.id}/per-minute" in by_name.headers["Location"]
    make_account(world.a, name="Harbour Bakery")
    several = owner.get("/reseller/reports/per-minute", query_string={"account": "harbour"}).get_data(as_text=True)
    assert "2 accounts match" in several and "Harbour Bakery" in several and "Harbour Cafe" in several
    none = owner.get("/reseller/reports/per-minute", query_string={"account": "zzz nobody"})
    assert none.status_code == 422 and "No account matches this number or name." in none.get_data(as_text=True)
    other = owner.get("/reseller/reports/per-minute", query_string={"account": world.account_b.account_number})
    assert other.status_code == 422                        # another reseller's account is not found
