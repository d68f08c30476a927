"""Migration i16_alerts on a database with account details: they get alerts once per crossing and
no sign-in notice; the alert table holds one condition per account and kind."""
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_details(uri):
    with database_at(uri) as step:
        from app.accounts.details import AccountDetails
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.models import Tenant

        step(down_revision_of("i16_alerts"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Account, id=7, tenant_id=1, account_number="4821000007", name="Harbour", email="h@x.example")
        insert_at_revision(AccountDetails, id=1, tenant_id=1, account_id=7, website="https://h.example", fax="",
                           phone2="", low_balance_email="")
        db.session.commit()
        step("i16_alerts")
        details = db.session.execute(text("SELECT website, alert_schedule, alert_stop_days, signin_notification "
                                          "FROM account_details")).one()
        insert = text("INSERT INTO account_alerts (tenant_id, account_id, kind, since, last_sent_at, sent) "
                      "VALUES (1, 7, 'low_balance', '2026-12-04 09:00:00', '2026-12-04 09:00:00', 1)")
        db.session.execute(insert)
        db.session.commit()
        try:
            db.session.execute(insert)
            db.session.commit()
            refused = False
        except IntegrityError:
            db.session.rollback()
            refused = True
        return tuple(details), refused


def _check(details, refused):
    assert details[0] == "https://h.example" and details[1] == "once" and details[2] == 0 and not details[3]
    assert refused


def test_i16_alerts_on_sqlite(tmp_path):
    _check(*upgrade_with_details(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i16_alerts_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i16a") as uri:
        _check(*upgrade_with_details(uri))
