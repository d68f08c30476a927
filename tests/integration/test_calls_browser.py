"""The calls browser (reseller and platform admin): filters, keyset pages, ASR/ACD, CSV,
re-rating one call or every unrated call of the filter (a job), and who sees what."""
import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from workers.runner import SimpleWorker
from sqlalchemy import select, update

from app import jobs
from app.audit import AuditEntry
from app.billing.models import PlanCountry
from app.calls.models import Call
from app.extensions import db
from app.rating.cdr import rate_calls
from app.rating.rerate import CallRerating
from tenants.scope import tenant_scope, unscoped
from tests.integration.rating_support import (add_call, balance, call, call_entries, fresh_index_cache, give_plan,
                                              make_sheet)

assert fresh_index_cache  # autouse fixture

LIST = "/reseller/calls"
ADMIN = "/admin/calls"
DAY = datetime(2025, 5, 10, 12, 0, 0)
RANGE = {"from": "2025-05-01", "to": "2025-05-31"}


def listed(resp) -> list[int]:
    """Call ids in the order the page lists them."""
    assert resp.status_code == 200, (resp.status_code, resp.data[:3000])
    return [int(i) for i in re.findall(rb'data-call-id="(\d+)"', resp.data)]


def figures_of(client, base=LIST, htmx=True, **args):
    """The ASR/ACD block of a filter, as the list loads it after itself."""
    return client.get(f"{base}/figures", query_string=args, headers={"HX-Request": "true"} if htmx else {})


def figure(resp, name) -> str:
    m = re.search(rb'data-figure="' + name.encode() + rb'">([^<]*)<', resp.data)
    assert m, name
    return m.group(1).decode()


def link(resp, rel) -> str | None:
    m = re.search(rb'<a href="([^"]+)"[^>]*rel="' + rel.encode() + rb'"', resp.data)
    return m.group(1).decode().replace("&amp;", "&") if m else None


def rate(ids, tenant_id):
    with tenant_scope(tenant_id):
        rate_calls(ids)
        db.session.commit()


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


@pytest.fixture
def admin(world, new_client, login):
    return login(new_client(), world.admin)


@pytest.fixture
def priced(world):
    """Reseller A's account A priced by a sheet with GB and FR rows; its plan opens GB only."""
    sheet = make_sheet(world.a, [("44", "GB", "0.60"), ("33", "FR", "1.20")])
    give_plan(world.account_a, sheet, countries=(("GB", 0),))
    return sheet


# --- who sees what -------------------------------------------------------------------------------

def test_a_reseller_sees_its_subtrees_calls_and_the_admin_sees_every_tenants_with_a_reseller_column(
        world, owner, admin, new_client, login):
    mine = add_call(world.account_a, "4420", 30, DAY)
    sub = add_call(world.account_a_sub, "4421", 30, DAY + timedelta(minutes=1))
    other = add_call(world.account_b, "4422", 30, DAY + timedelta(minutes=2))
    assert set(listed(owner.get(LIST, query_string=RANGE))) == {mine, sub}
    resp = admin.get(ADMIN, query_string=RANGE)
    assert listed(resp) == [other, sub, mine]                       # newest first
    assert b"<th scope=\"col\">Reseller</th>" in resp.data and b"Reseller B" in resp.data
    # A reseller without sub-resellers has no reseller column.
    resp = login(new_client(), world.owner_a_sub).get(LIST, query_string=RANGE)
    assert listed(resp) == [sub] and b"<th scope=\"col\">Reseller</th>" not in resp.data


def test_the_admin_can_narrow_to_one_reseller_and_its_sub_resellers(world, admin):
    mine = add_call(world.account_a, "4420", 30, DAY)
    sub = add_call(world.account_a_sub, "4421", 30, DAY)
    add_call(world.account_b, "4422", 30, DAY)
    assert set(listed(admin.get(ADMIN, query_string={**RANGE, "reseller": world.a.id}))) == {mine, sub}
    assert listed(admin.get(ADMIN, query_string={**RANGE, "reseller": world.a_sub.id})) == [sub]
    # Both filters hold together: A's account under reseller B lists nothing.
    both = {**RANGE, "reseller": world.b.id, "account": world.account_a.account_number}
    assert listed(admin.get(ADMIN, query_string=both)) == []
    assert figure(figures_of(admin, ADMIN, **both), "attempts") == "0"


def test_a_reseller_cannot_filter_on_another_resellers_tenant_or_account(world, owner):
    add_call(world.account_b, "4422", 30, DAY)
    resp = owner.get(LIST, query_string={**RANGE, "reseller": world.b.id})
    assert resp.status_code == 422 and b"Choose a reseller from the list." in resp.data
    resp = owner.get(LIST, query_string={**RANGE, "account": world.account_b.account_number})
    assert resp.status_code == 422
    assert f"No account numbered {world.account_b.account_number} here.".encode() in resp.data
    assert not re.findall(rb'data-call-id="', resp.data)


# --- filters -------------------------------------------------------------------------------------

def test_filters_by_date_range_account_destination_disposition_and_rating(world, owner, priced):
    gb = add_call(world.account_a, "442071234567", 60, DAY)
    fr = add_call(world.account_a, "33142", 30, DAY + timedelta(hours=1))          # FR is not opened
    busy = add_call(world.account_a, "442079", 0, DAY + timedelta(hours=2), disposition="BUSY")
    other = add_call(world.account_a2, "4420", 10, DAY + timedelta(days=3))          # A2 has no plan
    old = add_call(world.account_a, "4420", 10, datetime(2025, 4, 30, 23, 59, 59))
    rate([gb, fr, busy, other], world.a.id)
    unrated = add_call(world.account_a, "4420", 5, DAY + timedelta(hours=3))

    def ids(**args):
        return set(listed(owner.get(LIST, query_string={**RANGE, **args})))

    assert ids() == {gb, fr, busy, other, unrated}
    assert old in ids(**{"from": "2025-04-30", "to": "2025-04-30"}) and ids(**{"from": "2025-04-30", "to": "2025-04-30"}) == {old}
    assert ids(**{"from": "2025-05-13", "to": "2025-05-13"}) == {other}
    assert ids(account=world.account_a2.account_number) == {other}
    assert ids(destination="4420") == {gb, busy, other, unrated}
    assert ids(destination="+33") == {fr}
    assert ids(destination="fr") == {fr}                              # the rated country
    assert ids(disposition="BUSY") == {busy}
    assert ids(disposition="ANSWERED") == {gb, fr, other, unrated}
    assert ids(rating="rated") == {gb, busy}
    assert ids(rating="unrated") == {unrated}
    assert ids(rating="error") == {fr, other}
    assert ids(rating="needs_rating") == {fr, other, unrated}


def test_an_unrated_call_shows_its_error_in_the_list(world, owner, priced):
    fr = add_call(world.account_a, "33142", 30, DAY)
    rate([fr], world.a.id)
    resp = owner.get(LIST, query_string={**RANGE, "rating": "error"})
    assert listed(resp) == [fr]
    assert b"FR (prefix 33) is not opened by the plan" in resp.data
    assert f'action="/reseller/calls/{fr}/rerate"'.encode() in resp.data


@pytest.mark.parametrize("args, field, message", [
    ({"from": "2025-05-31", "to": "2025-05-01"}, "to", "The end date is before the start date."),
    ({"from": "31/05/2025"}, "from", "is not a date: use YYYY-MM-DD."),
    ({"from": "2024-01-01", "to": "2025-05-01"}, "to", "Choose at most 366 days."),
    ({"account": "12ab"}, "account", "Type an account number (digits only)."),
    ({"destination": "44-20"}, "destination", "or a two-letter country code"),
    ({"reseller": "x"}, "reseller", "Choose a reseller from the list."),
])
def test_a_bad_filter_gets_a_message_next_to_its_field_and_lists_nothing(world, owner, args, field, message):
    add_call(world.account_a, "4420", 30, DAY)
    resp = owner.get(LIST, query_string={**RANGE, **args})
    assert resp.status_code == 422
    assert f'id="calls-{field}-error"'.encode() in resp.data and message.encode() in resp.data
    assert b'aria-invalid="true"' in resp.data
    assert not re.findall(rb'data-call-id="', resp.data)              # not silently another range
    # What was typed stays in the field.
    for name in ("from", "to", "account", "destination"):
        if name in args:
            assert f'value="{args[name]}"'.encode() in resp.data


def test_unknown_select_values_fall_back_and_say_so(world, owner):
    call_id = add_call(world.account_a, "4420", 30, DAY)
    resp = owner.get(LIST, query_string={**RANGE, "disposition": "MAYBE", "rating": "x", "size": "7",
                                         "older": "garbage"})
    assert listed(resp) == [call_id]
    for notice in (b"Unknown disposition ignored", b"Unknown rating filter ignored", b"Page size must be one of",
                   b"That page link is not valid any more"):
        assert notice in resp.data


def test_the_filter_works_as_a_plain_get_form_and_htmx_gets_the_same_results(world, owner):
    call_id = add_call(world.account_a, "4420", 30, DAY)
    page = owner.get(LIST, query_string=RANGE)
    assert b'<form id="calls-query" method="get" action="/reseller/calls"' in page.data
    assert b"<html" in page.data
    part = owner.get(LIST, query_string=RANGE, headers={"HX-Request": "true"})
    assert b"<html" not in part.data and listed(part) == [call_id]


# --- keyset pages --------------------------------------------------------------------------------

def test_a_page_link_starts_after_the_last_call_seen_and_newer_comes_back(world, owner):
    # Calls at the same second are told apart by id (the keyset is (started_at, id)).
    ids = [add_call(world.account_a if i % 2 else world.account_a_sub, "4420", 10,
                    DAY + timedelta(minutes=i // 2 * 2 + (i == 3))) for i in range(7)]
    ids.append(add_call(world.account_a, "4420", 10, DAY + timedelta(minutes=2)))     # same second as ids[2]
    expected = [i for _, i in sorted(((call(i).started_at, i) for i in ids), reverse=True)]
    assert listed(owner.get(LIST, query_string={**RANGE, "size": "25"})) == expected
    from app.calls.browser import encode_cursor

    third = call(expected[2])
    resp = owner.get(LIST, query_string={**RANGE, "older": encode_cursor(third.started_at, third.id)})
    assert listed(resp) == expected[3:]
    newer = link(resp, "prev")
    assert newer is not None and link(resp, "next") is None
    back = owner.get(newer)
    assert listed(back) == expected[:3]
    assert link(back, "next") is not None and link(back, "prev") is None


def test_pages_of_25_cover_every_call_exactly_once(world, owner):
    with unscoped():
        rows = [Call(tenant_id=(world.a if i % 3 else world.a_sub).id,
                     account_id=(world.account_a if i % 3 else world.account_a_sub).id, server="pbx1",
                     uniqueid=f"k{i}", destination="4420", started_at=DAY + timedelta(seconds=i // 4), billsec=5,
                     disposition="ANSWERED") for i in range(60)]
        db.session.add_all(rows)
        db.session.commit()
        expected = [c.id for c in sorted(rows, key=lambda c: (c.started_at, c.id), reverse=True)]
    got, url, pages = [], None, 0
    resp = owner.get(LIST, query_string={**RANGE, "size": "25"})
    while True:
        got += listed(resp)
        pages += 1
        url = link(resp, "next")
        if url is None:
            break
        resp = owner.get(url)
    assert got == expected and pages == 3
    # And back from the last page with "Newer".
    back = []
    while (url := link(resp, "prev")) is not None:
        resp = owner.get(url)
        back = listed(resp) + back
    assert back == expected[:50]


# --- ASR and ACD ---------------------------------------------------------------------------------

def test_asr_and_acd_are_figured_over_the_whole_filter(world, owner):
    for billsec, disposition in ((60, "ANSWERED"), (30, "ANSWERED"), (0, "BUSY"), (0, "NO ANSWER"),
                                 (95, "ANSWERED"), (0, "FAILED")):
        add_call(world.account_a, "4420", billsec, DAY, disposition=disposition)
    add_call(world.account_b, "4420", 1000, DAY)                                     # another reseller's
    page = owner.get(LIST, query_string={**RANGE, "size": "25"})
    # The list does not wait for the aggregate: it loads it after itself (or by a link without JS).
    assert b'hx-get="/reseller/calls/figures?from=2025-05-01&amp;to=2025-05-31&amp;size=25" hx-trigger="load"' in page.data
    assert b'<noscript><a href="/reseller/calls/figures?' in page.data
    resp = figures_of(owner, **RANGE)
    assert b"<html" not in resp.data
    assert figure(resp, "attempts") == "6" and figure(resp, "answered") == "3"
    assert figure(resp, "asr") == "50.0 %"                    # 3 answered of 6 attempts
    assert figure(resp, "acd") == "1:02"                      # (60 + 30 + 95) / 3 = 61.67 s -> 62 s
    resp = figures_of(owner, **RANGE, disposition="BUSY")
    assert figure(resp, "asr") == "0.0 %" and figure(resp, "acd") == "–"
    resp = figures_of(owner, **{"from": "2025-01-01", "to": "2025-01-02"})
    assert figure(resp, "asr") == "–"
    assert b"No calls match." in owner.get(LIST, query_string={"from": "2025-01-01", "to": "2025-01-02"}).data
    # Without JavaScript the figures are a page of their own, with the way back.
    full = figures_of(owner, htmx=False, **RANGE)
    assert b"<html" in full.data and figure(full, "asr") == "50.0 %" and b"Back to the calls" in full.data
    bad = figures_of(owner, **{"from": "2025-05-31", "to": "2025-05-01"})
    assert bad.status_code == 422 and b"The end date is before the start date." in bad.data


# --- CSV -----------------------------------------------------------------------------------------

def test_the_csv_export_streams_every_call_of_the_filter_oldest_first(world, owner, priced, monkeypatch):
    from app.calls import browser

    monkeypatch.setattr(browser, "EXPORT_BATCH", 2)          # several batches for 5 calls
    ids = [add_call(world.account_a, "442071", 30 + i, DAY + timedelta(minutes=i)) for i in range(4)]
    fr = add_call(world.account_a, "33142", 30, DAY + timedelta(minutes=9))
    rate(ids + [fr], world.a.id)
    add_call(world.account_b, "4420", 30, DAY)
    resp = owner.get("/reseller/calls.csv", query_string=RANGE)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.is_streamed
    assert 'filename="calls-2025-05-01-2025-05-31.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [int(r["call_id"]) for r in rows] == ids + [fr]
    assert rows[0]["cost"] == "0.3000" and rows[0]["currency"] == "USD" and rows[0]["rating"] == "rated"
    assert rows[-1]["rating"] == "error" and "not opened by the plan" in rows[-1]["rating_error"]
    assert rows[0]["account_number"] == world.account_a.account_number and rows[0]["reseller"] == "Reseller A"


def test_the_csv_of_a_bad_filter_is_the_page_with_the_message(world, owner):
    resp = owner.get("/reseller/calls.csv", query_string={"from": "2025-05-31", "to": "2025-05-01"})
    assert resp.status_code == 422 and b"The end date is before the start date." in resp.data


def test_a_name_that_looks_like_a_formula_is_defused_in_the_csv(world, owner, make_account):
    evil = make_account(world.a, name="=HYPERLINK(\"http://x\")")
    add_call(evil, "4420", 5, DAY)
    rows = list(csv.DictReader(io.StringIO(owner.get("/reseller/calls.csv", query_string=RANGE).get_data(as_text=True))))
    assert rows[0]["account_name"].startswith("'=")


# --- re-rating -----------------------------------------------------------------------------------

def open_country(account, country):
    with unscoped():
        plan_id = db.session.execute(select(PlanCountry.plan_id).where(PlanCountry.account_id == account.id)).scalar()
        db.session.add(PlanCountry(tenant_id=account.tenant_id, account_id=account.id, plan_id=plan_id,
                                   country=country, minutes=0))
        db.session.commit()


def test_after_the_cause_is_fixed_a_re_rate_charges_the_call_once(world, owner, priced):
    fr = add_call(world.account_a, "33142", 60, DAY)
    rate([fr], world.a.id)
    assert call(fr).rating_error and call_entries(world.account_a.id) == []
    before = balance(world.account_a.id)

    # Not fixed yet: the re-rate says so and charges nothing.
    resp = owner.post(f"/reseller/calls/{fr}/rerate", data={"next": f"{LIST}?rating=error"})
    assert resp.status_code == 303 and resp.headers["Location"] == f"{LIST}?rating=error"
    assert "not opened by the plan" in call(fr).rating_error and call_entries(world.account_a.id) == []
    assert b"is still not rated: FR (prefix 33) is not opened by the plan" in owner.get(LIST, query_string=RANGE).data

    open_country(world.account_a, "FR")
    resp = owner.post(f"/reseller/calls/{fr}/rerate", data={"next": "https://evil.example/"})
    assert resp.headers["Location"] == LIST                                   # only back to the list
    assert f"Call {fr} rated: 1.2000 USD charged.".encode() in owner.get(LIST).data
    c = call(fr)
    assert c.rating_error == "" and c.cost == Decimal("1.2000") and c.country == "FR"
    assert call_entries(world.account_a.id) == [(f"call:{fr}", Decimal("-1.2000"))]
    assert balance(world.account_a.id) == before - Decimal("1.20")

    # Twice: the call is rated, its charge stands, nothing more is charged.
    resp = owner.post(f"/reseller/calls/{fr}/rerate")
    assert call_entries(world.account_a.id) == [(f"call:{fr}", Decimal("-1.2000"))]
    assert balance(world.account_a.id) == before - Decimal("1.20")
    with unscoped():
        audits = db.session.execute(select(AuditEntry.action, AuditEntry.details).where(
            AuditEntry.object_type == "Call", AuditEntry.object_id == fr)).all()
    assert [a for a, _ in audits] == ["call.rerate", "call.rerate"]
    assert "not opened" in audits[1][1]["before"] and audits[1][1]["after"] == ""


def test_a_call_marked_with_an_error_but_already_charged_is_not_charged_again(world, owner, priced):
    """The ledger key is the guard: a `call:<id>` entry already there turns a re-rate's charge into nothing."""
    gb = add_call(world.account_a, "442071", 60, DAY)
    rate([gb], world.a.id)
    charged = balance(world.account_a.id)
    with unscoped():                           # e.g. an operator's manual edit, or a crash mid-way
        db.session.execute(update(Call).where(Call.id == gb).values(rating_error="marked by hand"))
        db.session.commit()
    owner.post(f"/reseller/calls/{gb}/rerate")
    assert call(gb).rating_error == ""
    assert call_entries(world.account_a.id) == [(f"call:{gb}", Decimal("-0.6000"))]
    assert balance(world.account_a.id) == charged


def test_an_unrated_call_is_rated_by_the_re_rate_too(world, owner, priced):
    gb = add_call(world.account_a, "442071", 30, DAY)
    owner.post(f"/reseller/calls/{gb}/rerate")
    assert call(gb).rated_at is not None and call_entries(world.account_a.id) == [(f"call:{gb}", Decimal("-0.3000"))]


def test_another_resellers_call_answers_404_for_re_rate_and_changes_nothing(world, owner, new_client, login):
    sheet = make_sheet(world.b, [("33", "FR", "1.00")])
    give_plan(world.account_b, sheet, countries=(("GB", 0),))
    theirs = add_call(world.account_b, "33142", 60, DAY)
    rate([theirs], world.b.id)
    open_country(world.account_b, "FR")
    assert owner.post(f"/reseller/calls/{theirs}/rerate").status_code == 404
    sub = login(new_client(), world.owner_a_sub)
    assert sub.post(f"/reseller/calls/{theirs}/rerate").status_code == 404
    assert call(theirs).rating_error and call_entries(world.account_b.id) == []


def test_a_read_only_login_sees_calls_but_cannot_re_rate(world, new_client, login, make_login, priced):
    fr = add_call(world.account_a, "33142", 60, DAY)
    rate([fr], world.a.id)
    ro = login(new_client(), make_login(world.a, "reseller_readonly"))
    resp = ro.get(LIST, query_string=RANGE)
    assert listed(resp) == [fr] and b"Re-rate" not in resp.data
    assert b"Re-rate" not in figures_of(ro, **RANGE).data
    assert ro.post(f"/reseller/calls/{fr}/rerate").status_code == 403
    assert ro.post("/reseller/calls/rerate", data=RANGE).status_code == 403


def run_worker(app):
    q = jobs.queue(app)
    SimpleWorker([q], connection=q.connection).work(burst=True)


def test_re_rate_all_unrated_calls_of_the_filter_is_a_job_with_progress(app, world, owner, priced, monkeypatch):
    from app.rating import rerate

    monkeypatch.setattr(rerate, "BATCH", 2)
    frs = [add_call(world.account_a, "33142", 60, DAY + timedelta(minutes=i)) for i in range(3)]
    gb = add_call(world.account_a, "442071", 60, DAY)
    rate(frs + [gb], world.a.id)
    other_range = add_call(world.account_a, "33142", 60, datetime(2025, 6, 2))
    rate([other_range], world.a.id)
    b_sheet = make_sheet(world.b, [("33", "FR", "1.00")])
    give_plan(world.account_b, b_sheet, countries=(("GB", 0),))
    theirs = add_call(world.account_b, "33142", 60, DAY)
    rate([theirs], world.b.id)
    open_country(world.account_a, "FR")
    open_country(world.account_b, "FR")
    assert b"Re-rate 3 unrated calls of this filter" in figures_of(owner, **RANGE).data

    resp = owner.post("/reseller/calls/rerate", data={**RANGE, "next": LIST})
    assert resp.status_code == 303
    progress_url = resp.headers["Location"]
    assert re.match(r"^/reseller/calls/reratings/\d+$", progress_url)
    queued = owner.get(progress_url)
    assert b"Waiting for a worker" in queued.data and b'hx-trigger="load delay:500ms"' in queued.data
    run_worker(app)
    done = owner.get(progress_url, headers={"HX-Request": "true"})
    assert b"Done: 3 calls rated, 3 charged; 0 still with a rating error." in done.data
    assert b"hx-trigger" not in done.data
    assert all(call(i).rating_error == "" for i in frs)
    assert call(other_range).rating_error and call(theirs).rating_error        # outside the filter / scope
    assert sorted(k for k, _ in call_entries(world.account_a.id)) == sorted(f"call:{i}" for i in frs + [gb])
    with unscoped():
        run = db.session.execute(select(CallRerating)).scalar_one()
        assert (run.status, run.total, run.rated, run.charged, run.errors) == ("done", 3, 3, 3, 0)
        assert run.filters == {"from": "2025-05-01", "to": "2025-05-31"}
        assert db.session.execute(select(AuditEntry.action).where(
            AuditEntry.object_type == "CallRerating")).scalars().all() == ["calls.rerate_requested"]
    # Run again: nothing left to re-rate.
    resp = owner.post("/reseller/calls/rerate", data={**RANGE, "next": LIST})
    assert resp.headers["Location"] == LIST
    assert b"No call matching the filter is waiting to be rated." in owner.get(LIST).data


def test_the_platform_admin_re_rates_across_resellers(app, world, admin):
    sheets = {t: make_sheet(t, [("33", "FR", "1.00")]) for t in (world.a, world.b)}
    give_plan(world.account_a, sheets[world.a], countries=(("FR", 0),))
    give_plan(world.account_b, sheets[world.b], countries=(("FR", 0),))
    a = add_call(world.account_a, "33142", 60, DAY)
    b = add_call(world.account_b, "33142", 60, DAY)      # not rated yet
    resp = admin.post(f"/admin/calls/{a}/rerate")
    assert resp.status_code == 303 and call(a).cost == Decimal("1.0000")
    resp = admin.post("/admin/calls/rerate", data={**RANGE, "rating": "needs_rating"})
    run_worker(app)
    assert b"Done: 1 call rated, 1 charged" in admin.get(resp.headers["Location"]).data
    assert call(b).cost == Decimal("1.0000")


def test_a_re_rating_run_of_another_reseller_answers_404(app, world, owner, new_client, login):
    with unscoped():
        run = CallRerating(tenant_id=world.b.id, job_id="call-rerate-other", filters={}, status="done")
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    assert owner.get(f"/reseller/calls/reratings/{run_id}").status_code == 404
    admin = login(new_client(), world.admin)
    assert admin.get(f"/admin/calls/reratings/{run_id}").status_code == 200


def test_the_embedded_sqlite_database_merges_the_tenants_the_same_way(tmp_path):
    """SQLite (scripts/run) has no LATERAL: the per-tenant ranges are a UNION ALL there."""
    from app import create_app
    from app.calls import browser
    from tests.conftest import TestConfig
    from tenants.models import Tenant
    from tenants.scope import EVERYTHING, use_scope

    class SqliteConfig(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'embedded.db'}"
        SQLALCHEMY_ENGINE_OPTIONS = {}

    app = create_app(SqliteConfig)
    with app.app_context(), use_scope(EVERYTHING):
        db.create_all()
        for i, path in ((1, "/1/"), (2, "/1/2/"), (3, "/1/3/")):
            db.session.add(Tenant(id=i, parent_id=1 if i > 1 else None, path=path, name=f"T{i}", slug=f"t{i}",
                                  email=f"t{i}@x.example"))
        db.session.flush()
        calls = [Call(tenant_id=2 + i % 2, account_id=1, server="s", uniqueid=str(i), destination="4420",
                      started_at=DAY + timedelta(seconds=i // 2), billsec=i % 4, disposition="ANSWERED")
                 for i in range(9)]
        db.session.add_all(calls)
        db.session.flush()
        expected = [c.id for c in sorted(calls, key=lambda c: (c.started_at, c.id), reverse=True)]
        resolved = browser.Resolved(None, (1, 2, 3))
        cq = browser.CallQuery.from_args({**RANGE, "size": "25"})
        keys = browser._keys(browser.where_clauses(cq, resolved), resolved, limit=4)
        assert [k[1] for k in keys] == expected[:4]
        older = browser._keys(browser.where_clauses(cq, resolved), resolved, after=keys[-1], limit=10)
        assert [k[1] for k in older] == expected[4:]
        newer = browser._keys(browser.where_clauses(cq, resolved), resolved, before=older[0], ascending=True, limit=2)
        assert [k[1] for k in newer] == list(reversed(expected[2:4]))
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()


def test_two_re_rates_of_one_call_racing_charge_it_once(app, world, new_client, login, priced, monkeypatch):
    import threading
    from types import SimpleNamespace

    from app.rating import rerate

    fr = add_call(world.account_a, "33142", 60, DAY)
    rate([fr], world.a.id)
    open_country(world.account_a, "FR")
    before = balance(world.account_a.id)
    real, barrier = rerate.rerate_calls, threading.Barrier(2)

    def synchronised(ids):
        barrier.wait(timeout=10)              # both requests clear and rate the call together
        return real(ids)

    monkeypatch.setattr(rerate, "rerate_calls", synchronised)
    results = [None, None]
    owner_login = SimpleNamespace(id=world.owner_a.id)

    def submit(i):
        try:
            with app.app_context():
                results[i] = login(new_client(), owner_login).post(f"/reseller/calls/{fr}/rerate").status_code
        except BaseException as e:  # shown by the assertion below
            results[i] = repr(e)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [303, 303], results
    assert call_entries(world.account_a.id) == [(f"call:{fr}", Decimal("-1.2000"))]
    assert balance(world.account_a.id) == before - Decimal("1.20")
    assert call(fr).rating_error == "" and call(fr).cost == Decimal("1.2000")


def test_without_redis_the_re_rating_runs_in_process(app, world, owner, priced):
    fr = add_call(world.account_a, "33142", 60, DAY)
    rate([fr], world.a.id)
    open_country(world.account_a, "FR")
    redis_url, app.config["REDIS_URL"] = app.config["REDIS_URL"], None
    try:
        resp = owner.post("/reseller/calls/rerate", data={**RANGE, "rating": "error"})
        page = owner.get(resp.headers["Location"])
        assert b"Done: 1 call rated, 1 charged; 0 still with a rating error." in page.data
    finally:
        app.config["REDIS_URL"] = redis_url
    assert call_entries(world.account_a.id) == [(f"call:{fr}", Decimal("-1.2000"))]
