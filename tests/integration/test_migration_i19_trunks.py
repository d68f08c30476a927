"""Migration i19_trunks on a database with an account, an extension's realtime endpoint and a rated
call: the endpoint keeps its row with no trunk, the call keeps its charge with no carrier (NULL:
unknown, not free), and a trunk with identify rows can be added after."""
from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, postgresql_schema

TENANT = ("INSERT INTO tenants (id, parent_id, path, name, slug, status, email, currency, base_extension, created_at, "
          "call_charge_places) VALUES (1, NULL, '/1/', 'Harbour', 'h', 'active', 'r@h.example', 'USD', 1000, "
          "'2026-11-01 00:00:00', 2)")
ACCOUNT = ("INSERT INTO accounts (id, tenant_id, account_number, name, email, first_name, last_name, phone, company, "
           "address, city, state, postcode, country, timezone, language, currency, status, billing_type, balance, "
           "credit_limit, max_channels, cps_limit, low_balance_threshold, email_alerts, play_insufficient_credit, "
           "invoice_day, vat_rate, vat_number, expiry_mode, autorefill, initial_balance, notes, created_at, updated_at, "
           "version) VALUES (7, 1, '4821000007', 'Harbour Cafe', 'cafe@h.example', '', '', '', '', '', '', '', '', "
           "'GB', 'Europe/London', 'en', 'USD', 'active', 'prepaid', 10, 0, 0, 0, 0, TRUE, TRUE, 1, 0, '', 'none', "
           "FALSE, 0, '', '2026-11-01 00:00:00', '2026-11-01 00:00:00', 1)")
ENDPOINT = ("INSERT INTO ps_endpoints (id, tenant_id, account_id, context, accountcode) "
            "VALUES ('t1_1000', 1, 7, 'ringledger-customers', '4821000007')")
CALL = ("INSERT INTO calls (id, tenant_id, account_id, server, uniqueid, linkedid, extension, destination, started_at,"
        " billsec, disposition, country, bundle_seconds, charged_seconds, rating_error, created_at, recovered, cost)"
        " VALUES (9, 1, 7, 'pbx', '1.1', '', '1000', '4420', '2026-11-02 10:00:00', 30, 'ANSWERED', 'GB', 0, 30, '',"
        " '2026-11-02 10:01:00', FALSE, 0.05)")
TRUNK = ("INSERT INTO customer_trunks (id, tenant_id, account_id, name, hosts, call_limit, cps_limit, enabled, "
         "created_at) VALUES (3, 1, 7, 'Office PBX', '203.0.113.10', 4, 2, TRUE, '2026-12-04 00:00:00')")
IDENTIFY = ("INSERT INTO ps_endpoint_id_ips (id, tenant_id, account_id, endpoint, match, trunk_id) "
            "VALUES ('trunk-3-1', 1, 7, 'trunk-3', '203.0.113.10', 3)")
TRUNK_ENDPOINT = ("INSERT INTO ps_endpoints (id, tenant_id, account_id, context, accountcode, trunk_id) "
                  "VALUES ('trunk-3', 1, 7, 'ringledger-customers', '4821000007', 3)")


def upgrade_with_data(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("i19_trunks"))
        for sql in (TENANT, ACCOUNT, ENDPOINT, CALL):
            db.session.execute(text(sql))
        db.session.commit()
        step("i19_trunks")
        kept = db.session.execute(text("SELECT id, accountcode, trunk_id FROM ps_endpoints")).one()
        call = db.session.execute(text("SELECT cost, carrier_id, carrier_cost FROM calls")).one()
        for sql in (TRUNK, IDENTIFY, TRUNK_ENDPOINT):
            db.session.execute(text(sql))
        db.session.commit()
        identify = db.session.execute(text(
            "SELECT i.match, t.call_limit, t.cps_limit, e.accountcode FROM ps_endpoint_id_ips i "
            "JOIN customer_trunks t ON t.id = i.trunk_id JOIN ps_endpoints e ON e.id = i.endpoint")).one()
        return tuple(kept), tuple(call), tuple(identify)


def _check(kept, call, identify):
    from decimal import Decimal

    assert kept == ("t1_1000", "4821000007", None)
    assert (Decimal(str(call[0])), call[1], call[2]) == (Decimal("0.05"), None, None)
    assert identify == ("203.0.113.10", 4, 2, "4821000007")


def test_i19_trunks_on_sqlite(tmp_path):
    _check(*upgrade_with_data(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i19_trunks_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i19t") as uri:
        _check(*upgrade_with_data(uri))
