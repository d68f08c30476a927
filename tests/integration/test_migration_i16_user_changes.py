"""Migration i16_user_changes on a database with resellers and accounts: existing resellers get
decreases at the next period (False); the table holds one waiting change per account."""
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_accounts(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.models import Tenant

        step(down_revision_of("i16_user_changes"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Account, id=7, tenant_id=1, account_number="4821000007", name="Harbour", email="h@x.example")
        db.session.commit()
        step("i16_user_changes")
        tenant = db.session.execute(text("SELECT name, user_decrease_immediate FROM tenants")).one()
        insert = ("INSERT INTO scheduled_user_changes (tenant_id, account_id, from_users, to_users, effective_on, "
                  "period, status, note, created_at) VALUES (1, 7, 3, {to}, '2027-01-01', '2027-01', '{status}', '', "
                  "'2026-12-04 09:00:00')")
        db.session.execute(text(insert.format(to=2, status="scheduled")))
        db.session.execute(text(insert.format(to=1, status="replaced")))       # closed ones are not limited
        db.session.commit()
        try:
            db.session.execute(text(insert.format(to=1, status="scheduled")))
            db.session.commit()
            refused = False
        except IntegrityError:
            db.session.rollback()
            refused = True
        rows = db.session.execute(text("SELECT count(*) FROM scheduled_user_changes")).scalar_one()
        return tuple(tenant), refused, rows


def _check(tenant, refused, rows):
    assert tenant[0] == "Acme" and not tenant[1]
    assert refused and rows == 2


def test_i16_user_changes_on_sqlite(tmp_path):
    _check(*upgrade_with_accounts(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i16_user_changes_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i16u") as uri:
        _check(*upgrade_with_accounts(uri))
