"""Rate-deck import (background job, progress) and export (/reseller/rates/<id>/import, export.csv)."""
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from workers.runner import SimpleWorker
from sqlalchemy import select

from app import jobs
from app.extensions import db
from app.rating.imports import RateImport
from app.rating.models import Rate, RateSheet
from tenants.scope import unscoped
from tests.integration.rating_support import fresh_index_cache, make_sheet

assert fresh_index_cache  # autouse fixture

GOOD = """Prefix,ISO,Destination,Rate,Connect Fee,Billing,Effective From
44,GB,United Kingdom,0.0123,0,30/6,
447,GB,UK Mobile,0.045,0,1/1,
447,GB,UK Mobile,0.040,0,1/1,2031-01-01
33,,France,"0,0200",0.01,60,
"""
BAD = GOOD + """0044abc,GB,Bad prefix,0.01,0,1/1,
49,DE,Germany,-0.01,0,1/1,
1,US,USA,0.005,0,1/1,31/31/2025
"""


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


def upload(client, sheet_id, content, **form):
    data = {"file": (io.BytesIO(content.encode() if isinstance(content, str) else content), "deck.csv"),
            "mode": "merge", **form}
    return client.post(f"/reseller/rates/{sheet_id}/import", data=data, content_type="multipart/form-data")


def run_worker(app):
    q = jobs.queue(app)
    SimpleWorker([q], connection=q.connection).work(burst=True)


def rows_of(sheet_id):
    db.session.rollback()
    with unscoped():
        return [(r.prefix, r.country, r.description, r.rate_per_minute, r.connect_fee, r.first_block, r.increment,
                 r.minimum_charge, r.effective_from)
                for r in db.session.execute(select(Rate).where(Rate.rate_sheet_id == sheet_id)
                                            .order_by(Rate.prefix, Rate.effective_from)
                                            .execution_options(populate_existing=True)).scalars()]


def version_of(sheet_id):
    db.session.rollback()
    with unscoped():
        return db.session.scalar(select(RateSheet.version).where(RateSheet.id == sheet_id))


def the_import(job_id) -> RateImport:
    db.session.rollback()
    with unscoped():
        return db.session.execute(select(RateImport).where(RateImport.job_id == job_id)
                                  .execution_options(populate_existing=True)).scalar_one()


def test_an_uploaded_deck_is_imported_by_a_job_with_a_progress_page(app, world, owner):
    sheet_id = make_sheet(world.a)
    resp = upload(owner, sheet_id, GOOD)
    assert resp.status_code == 303
    progress_url = resp.headers["Location"]
    job_id = progress_url.rsplit("/", 1)[1]
    assert progress_url == f"/reseller/rates/imports/{job_id}"

    waiting = owner.get(progress_url, headers={"HX-Request": "true"})
    assert waiting.status_code == 200
    assert b'hx-trigger="load delay:500ms"' in waiting.data and b"<progress" in waiting.data
    assert b"Waiting for a worker" in waiting.data and rows_of(sheet_id) == []

    run_worker(app)

    done = owner.get(progress_url, headers={"HX-Request": "true"})
    assert b"hx-trigger" not in done.data                      # finished: the partial stops polling
    assert b"Done: 4 rows imported" in done.data and b'value="100"' in done.data
    assert rows_of(sheet_id) == [
        ("33", "FR", "France", Decimal("0.02"), Decimal("0.01"), 60, 60, Decimal("0"), date(2000, 1, 1)),
        ("44", "GB", "United Kingdom", Decimal("0.0123"), Decimal("0"), 30, 6, Decimal("0"), date(2000, 1, 1)),
        ("447", "GB", "UK Mobile", Decimal("0.045"), Decimal("0"), 1, 1, Decimal("0"), date(2000, 1, 1)),
        ("447", "GB", "UK Mobile", Decimal("0.04"), Decimal("0"), 1, 1, Decimal("0"), date(2031, 1, 1)),
    ]
    assert version_of(sheet_id) == 2
    imp = the_import(job_id)
    assert (imp.status, imp.lines, imp.imported, imp.error_count, imp.content) == ("done", 4, 4, 0, None)
    assert jobs.job_status(job_id)["meta"]["done"] == 100
    page = owner.get(progress_url)                             # the full page, for a plain request
    assert b"<html" in page.data and b"Import into" in page.data


def test_the_progress_page_follows_the_running_job_stage_by_stage(app, world, owner, monkeypatch):
    """While the RQ job writes, each poll of the page shows how far it is (read from the job's meta)."""
    import app.rating.imports as imports

    sheet_id = make_sheet(world.a)
    progress_url = upload(owner, sheet_id, GOOD).headers["Location"]
    polls = []
    real_set_progress = imports.set_progress

    def set_progress_and_poll(done, total, **extra):        # a browser polling in between
        real_set_progress(done, total, **extra)
        polls.append(owner.get(progress_url, headers={"HX-Request": "true"}).get_data(as_text=True))

    monkeypatch.setattr(imports, "set_progress", set_progress_and_poll)
    monkeypatch.setattr(imports, "COPY_CHUNK", 1)            # report after every row of this small deck
    run_worker(app)

    running = [p for p in polls if 'hx-trigger="load delay:500ms"' in p]     # still polling
    stages = [re.search(r"<p>(.*?)</p>", p)[1] for p in running]
    assert stages[:4] == ["Reading the file · 0%", "Checked 4 lines · 25%", "Writing 0 of 4 rows · 25%",
                          "Writing 1 of 4 rows · 42%"]
    assert stages[-1] == "Writing 4 of 4 rows · 95%"
    percents = [int(re.search(r'<progress value="(\d+)"', p)[1]) for p in running]
    assert percents == sorted(percents) and percents[-1] == 95
    assert "Done: 4 rows imported" in polls[-1] and "hx-trigger" not in polls[-1]


def test_bad_lines_are_reported_by_line_number_and_nothing_is_imported(app, world, owner):
    sheet_id = make_sheet(world.a, [("44", "GB", "0.5")])
    job_id = upload(owner, sheet_id, BAD).headers["Location"].rsplit("/", 1)[1]
    run_worker(app)
    imp = the_import(job_id)
    assert imp.status == "rejected" and imp.error_count == 3 and imp.imported == 0
    assert [line for line, _ in imp.errors] == [6, 7, 8]
    assert "must contain digits only" in imp.errors[0][1]
    assert "cannot be negative" in imp.errors[1][1]
    assert "not a real date" in imp.errors[2][1]
    page = owner.get(f"/reseller/rates/imports/{job_id}")
    assert b"3 bad lines: nothing imported." in page.data and b"Not imported" not in page.data
    assert b"<td class=\"num\">7</td><td>rate -0.01 cannot be negative</td>" in page.data
    assert rows_of(sheet_id) == [("44", "GB", "GB 44", Decimal("0.5"), Decimal("0"), 1, 1, Decimal("0"),
                                  date(2000, 1, 1))]
    assert version_of(sheet_id) == 1


def test_the_good_lines_option_imports_the_rest_and_still_reports_the_bad_ones(app, world, owner):
    sheet_id = make_sheet(world.a)
    job_id = upload(owner, sheet_id, BAD, import_good_lines="y").headers["Location"].rsplit("/", 1)[1]
    run_worker(app)
    imp = the_import(job_id)
    assert (imp.status, imp.imported, imp.error_count) == ("done", 4, 3)
    assert len(rows_of(sheet_id)) == 4
    assert b"3 bad lines left out" in owner.get(f"/reseller/rates/imports/{job_id}").data


def test_merge_keeps_other_rows_and_replace_makes_the_sheet_equal_to_the_deck(app, world, owner):
    sheet_id = make_sheet(world.a, [("49", "DE", "0.03"), ("44", "GB", "0.5")])
    upload(owner, sheet_id, GOOD)
    run_worker(app)
    assert {r[0] for r in rows_of(sheet_id)} == {"33", "44", "447", "49"}
    assert [r[3] for r in rows_of(sheet_id) if r[0] == "44"] == [Decimal("0.0123")]   # the same row, updated
    upload(owner, sheet_id, GOOD, mode="replace")
    run_worker(app)
    assert {r[0] for r in rows_of(sheet_id)} == {"33", "44", "447"}


def test_export_then_reimport_gives_the_same_rows(app, world, owner):
    source = make_sheet(world.a, [("44", "GB", "0.0123", "0.05", 30, 6, "0.02"),
                                  ("44", "GB", "0.02", "0", 30, 6, "0", date(2031, 1, 1)),
                                  ("1876", "JM", "0.123456", "0", 60, 60)])
    with unscoped():
        db.session.execute(select(Rate).where(Rate.prefix == "1876")).scalar_one().description = "=HYPERLINK(1)"
        db.session.commit()
    resp = owner.get(f"/reseller/rates/{source}/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    csv_text = resp.get_data(as_text=True)
    assert csv_text.splitlines()[0] == "Prefix,ISO,Destination,Rate,Connect Fee,First Block,Increment,Minimum Charge,Effective From"
    assert "'=HYPERLINK(1)" in csv_text                           # a spreadsheet will not run it
    target = make_sheet(world.a, [("99", "", "0.1")])
    upload(owner, target, csv_text, mode="replace")
    run_worker(app)
    assert rows_of(target) == rows_of(source)


def test_an_import_of_another_reseller_or_an_unknown_job_is_404(app, world, owner, new_client, login):
    sheet_b = make_sheet(world.b)
    other = login(new_client(), world.owner_b)
    job_id = upload(other, sheet_b, GOOD).headers["Location"].rsplit("/", 1)[1]
    assert owner.get(f"/reseller/rates/imports/{job_id}").status_code == 404
    assert owner.get("/reseller/rates/imports/rate-import-doesnotexist").status_code == 404
    assert owner.get("/reseller/rates/imports/..%2Fetc").status_code == 404
    assert upload(owner, sheet_b, GOOD).status_code == 404
    assert other.get(f"/reseller/rates/imports/{job_id}").status_code == 200


def test_an_upload_without_a_file_or_an_empty_file_is_refused(app, world, owner):
    sheet_id = make_sheet(world.a)
    resp = owner.post(f"/reseller/rates/{sheet_id}/import", data={"mode": "merge"}, content_type="multipart/form-data")
    assert resp.status_code == 422 and b"Choose a CSV file." in resp.data
    resp = upload(owner, sheet_id, "  \n")
    assert resp.status_code == 422 and b"The file is empty." in resp.data
    with unscoped():
        assert db.session.execute(select(RateImport)).first() is None


def test_a_file_without_a_header_is_rejected_with_a_reason(app, world, owner):
    sheet_id = make_sheet(world.a)
    job_id = upload(owner, sheet_id, "hello,world\n1,2\n").headers["Location"].rsplit("/", 1)[1]
    run_worker(app)
    imp = the_import(job_id)
    assert imp.status == "rejected" and "no header row" in imp.errors[0][1]


def test_without_redis_the_import_runs_in_process(app, world, owner):
    sheet_id = make_sheet(world.a)
    redis_url, app.config["REDIS_URL"] = app.config["REDIS_URL"], None
    try:
        job_id = upload(owner, sheet_id, GOOD).headers["Location"].rsplit("/", 1)[1]
        assert jobs.job_status(job_id)["status"] == "finished"
        assert b"Done: 4 rows imported" in owner.get(f"/reseller/rates/imports/{job_id}").data
    finally:
        app.config["REDIS_URL"] = redis_url
    assert len(rows_of(sheet_id)) == 4


def test_the_export_is_read_in_pages_that_join_up_to_the_whole_deck(app, world):
    from app.rating.imports import export_chunks

    sheet_id = make_sheet(world.a, [(str(p), "", "0.01") for p in (31, 32, 33, 34, 35)]
                          + [("31", "NL", "0.02", "0", 1, 1, "0", date(2031, 1, 1))])
    with unscoped():
        whole = "".join(export_chunks(sheet_id))
        pieces = list(export_chunks(sheet_id, chunk=2))
    assert len(pieces) == 4 and "".join(pieces) == whole
    assert len(whole.splitlines()) == 7 and whole.count("Prefix,ISO") == 1


def test_a_line_without_a_date_and_one_dated_2000_01_01_are_the_same_row_and_reported(app, world, owner):
    sheet_id = make_sheet(world.a)
    deck = "Prefix,Rate,Effective\n44,0.01,\n33,0.02,\n44,0.03,2000-01-01\n"
    job_id = upload(owner, sheet_id, deck).headers["Location"].rsplit("/", 1)[1]
    run_worker(app)
    imp = the_import(job_id)
    assert imp.status == "rejected" and imp.errors == [[4, "prefix 44 effective 2000-01-01 is already on line 2"]]
