"""Migration i20_auto_reports on a database with an account, its details and a letter: the
account's reports start off, the letter keeps its text with no key and no attachment, and a
second letter with the same key is refused by the database."""
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

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
DETAILS = ("INSERT INTO account_details (id, tenant_id, account_id, website, fax, phone2, low_balance_email, "
           "agent_commission_rate) VALUES (1, 1, 7, 'https://cafe.example', '', '', '', 5)")
LETTER = ("INSERT INTO notifications (tenant_id, account_id, kind, to_email, subject, body, status, transport, attempts, "
          "error, created_at{key}) VALUES (1, 7, 'welcome', 'cafe@h.example', 'Welcome', 'Hello', 'sent', 'smtp', 1, '', "
          "'2026-11-01 00:00:00'{value})")


def upgrade_with_data(uri):
    with database_at(uri) as step:
        from app.extensions import db

        step(down_revision_of("i20_auto_reports"))
        for sql in (TENANT, ACCOUNT, DETAILS, LETTER.format(key="", value="")):
            db.session.execute(text(sql))
        db.session.commit()
        step("i20_auto_reports")
        details = db.session.execute(text("SELECT website, report_schedule, report_to_customer FROM account_details")).one()
        letter = db.session.execute(text("SELECT subject, body, dedupe_key, attachment_name, attachment "
                                         "FROM notifications")).one()
        keyed = LETTER.format(key=", dedupe_key", value=", 'usage-report:7:2026-11-01:2026-11-01:reseller'")
        db.session.execute(text(keyed))
        db.session.commit()
        try:
            db.session.execute(text(keyed))
            db.session.commit()
            refused = False
        except IntegrityError:
            db.session.rollback()
            refused = True
        return tuple(details), tuple(letter), refused


def _check(details, letter, refused):
    assert details[0] == "https://cafe.example" and details[1] == "off" and not details[2]
    assert letter == ("Welcome", "Hello", None, "", None)
    assert refused


def test_i20_auto_reports_on_sqlite(tmp_path):
    _check(*upgrade_with_data(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i20_auto_reports_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i20r") as uri:
        _check(*upgrade_with_data(uri))
