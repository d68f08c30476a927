"""Migration i14_calls_browser on a database with calls: they survive, the browser's keyset
index exists and serves a tenant's calls in order, and re-rating runs can be recorded."""
from sqlalchemy import inspect, text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

TENANT = ("INSERT INTO tenants (id, parent_id, path, name, slug, status, email, currency, base_extension, created_at) "
          "VALUES (:id, :parent, :path, :name, :slug, 'active', '', 'USD', 1000, '2026-11-01 00:00:00')")
# calls carry no foreign key to accounts (HighVolumeAccountOwned): no account row needed
CALL = ("INSERT INTO calls (id, tenant_id, account_id, server, uniqueid, linkedid, extension, destination, started_at,"
        " billsec, disposition, country, bundle_seconds, charged_seconds, rating_error, created_at, recovered)"
        " VALUES (:id, 1, 1, 'pbx', :uid, '', '1000', '4420', :start, 30, 'ANSWERED', '', 0, 0, :error,"
        " '2026-11-01 00:00:00', :f)")


def upgrade_with_calls(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("i14_calls_browser"))
        db.session.execute(text(TENANT), {"id": 1, "parent": None, "path": "/1/", "name": "Platform", "slug": "p"})
        for i, (start, error) in enumerate((("2026-11-02 10:00:00", ""), ("2026-11-01 09:00:00", "no rate for 4420"),
                                            ("2026-11-03 08:00:00", "")), start=1):
            db.session.execute(text(CALL), {"id": i, "uid": f"u{i}", "start": start, "error": error, "f": False})
        db.session.commit()
        step("i14_calls_browser")
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(db.engine).get_indexes("calls")}
        ordered = db.session.execute(text(
            "SELECT id, rating_error FROM calls WHERE tenant_id = 1 ORDER BY started_at DESC, id DESC")).all()
        db.session.execute(text(
            "INSERT INTO call_reratings (tenant_id, job_id, filters, all_tenants, status, total, rated, charged,"
            " errors, skipped, message, created_at) VALUES (1, 'call-rerate-x', '{}', false, 'queued', 1, 0, 0,"
            " 0, 0, '', '2026-12-04 00:00:00')"))
        runs = db.session.execute(text("SELECT job_id, status FROM call_reratings")).all()
        db.session.rollback()
        return indexes, [tuple(r) for r in ordered], [tuple(r) for r in runs]


def _check(indexes, ordered, runs):
    assert indexes["ix_calls_tenant_started"] == ["tenant_id", "started_at", "id"]
    assert indexes["ix_calls_rating_error"] == ["started_at", "id"]
    assert ordered == [(3, ""), (1, ""), (2, "no rate for 4420")]
    assert runs == [("call-rerate-x", "queued")]


def test_i14_keeps_calls_and_adds_the_browser_index_on_sqlite(tmp_path):
    _check(*upgrade_with_calls(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i14_keeps_calls_and_adds_the_browser_index_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i14c") as uri:
        _check(*upgrade_with_calls(uri))
