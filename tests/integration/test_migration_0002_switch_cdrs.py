"""Migration 0002 on a database that already holds calls: they stay, not recovered, with no
measured billsec; the switch CDR table starts empty and takes cdr_pgsql's rows."""
from datetime import datetime

from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

CALL = ("INSERT INTO calls (id, tenant_id, account_id, server, uniqueid, linkedid, extension, destination, "
        "started_at, billsec, disposition, country, bundle_seconds, charged_seconds, rating_error, created_at, cost) "
        "VALUES (7, 1, 1, 'pbx1', '1733000000.1', '1733000000.1', '1001', '442071234567', :t, 42, 'ANSWERED', "
        "'GB', 0, 42, '', :t, 0.42)")


def upgrade_with_a_call(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("0002"))
        db.session.execute(text(CALL), {"t": datetime(2026, 12, 1, 9, 0)})
        db.session.commit()
        step("0002")
        call = db.session.execute(text("SELECT billsec, cost, measured_billsec, recovered FROM calls")).one()
        db.session.execute(text("INSERT INTO switch_cdrs (calldate, clid, src, dst, dcontext, channel, dstchannel, "
                                "lastapp, lastdata, duration, billsec, disposition, amaflags, accountcode, uniqueid, "
                                "userfield, peeraccount, linkedid, sequence, server) VALUES (:t, '', '1001', "
                                "'442071234567', 'ringledger-customers', 'PJSIP/1001-00000001', '', 'Dial', '', 50, "
                                "42, 'ANSWERED', 3, '1234567890', '1733000000.1', '', '', '1733000000.1', 1, 'pbx1')"),
                           {"t": datetime(2026, 12, 1, 9, 0)})
        pending = db.session.execute(text("SELECT count(*) FROM switch_cdrs WHERE reconciled_at IS NULL")).scalar()
        db.session.commit()
        return call, pending


def test_0002_keeps_existing_calls_on_sqlite(tmp_path):
    call, pending = upgrade_with_a_call(f"sqlite:///{tmp_path / 'm.db'}")
    assert (call.billsec, call.measured_billsec, bool(call.recovered)) == (42, None, False)
    assert pending == 1


def test_0002_keeps_existing_calls_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("0002") as uri:
        call, pending = upgrade_with_a_call(uri)
    assert (call.billsec, str(call.cost), call.measured_billsec, call.recovered) == (42, "0.4200", None, False)
    assert pending == 1
