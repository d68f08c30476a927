"""Migration i16_billing_cycle on a database with an account charged for this month at creation:
the account becomes monthly on day 1 with no suspension reason, and the first period run after
the upgrade finds this month's key taken (no double charge)."""
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select, text

from tests.conftest import require_service
from tests.integration.migration_support import (database_at, down_revision_of, insert_at_revision,
                                                 postgresql_schema)


def upgrade_with_a_charged_account(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.billing.models import ServicePlan
        from app.extensions import db
        from app.ledger import LedgerEntry
        from tenants.models import Tenant
        from tenants.scope import unscoped
        from workers.billing import charge_period

        month = datetime.now(timezone.utc).strftime("%Y-%m")
        step(down_revision_of("i16_billing_cycle"))
        with unscoped():
            insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
            insert_at_revision(Account, id=1, tenant_id=1, account_number="1000000001", name="Harbour Cafe",
                               email="a@x.example", balance=Decimal("85.00"))
            insert_at_revision(ServicePlan, tenant_id=1, account_id=1, name="Plan", users=3,
                               cost_per_user=Decimal("5.00"))
            insert_at_revision(LedgerEntry, tenant_id=1, account_id=1, amount=Decimal("100.00"), kind="credit",
                               idempotency_key="account:1:initial-credit", balance_after=Decimal("100.00"))
            insert_at_revision(LedgerEntry, tenant_id=1, account_id=1, amount=Decimal("-15.00"), kind="user_charge",
                               idempotency_key=f"account:1:users:{month}", balance_after=Decimal("85.00"))
            db.session.commit()
        step("i16_billing_cycle")
        row = db.session.execute(text("SELECT billing_schedule, billing_day, status_reason FROM accounts")).one()
        db.session.commit()
        step("head")             # the run is today's code: it needs today's schema (later revisions too)
        summary = charge_period(1, month)
        with unscoped():
            keys = db.session.execute(select(LedgerEntry.idempotency_key).order_by(LedgerEntry.id)).scalars().all()
            balance = db.session.execute(select(Account.balance)).scalar_one()
            statuses = db.session.execute(text("SELECT status FROM recurring_charges")).scalars().all()
        db.session.rollback()
        return tuple(row), summary, keys, balance, statuses, month


def _check(row, summary, keys, balance, statuses, month):
    assert row == ("monthly", 1, "")
    assert summary["skipped"] == 1 and summary["charged"] == 0 and summary["finished"]
    assert keys == ["account:1:initial-credit", f"account:1:users:{month}"]
    assert balance == Decimal("85.00") and statuses == ["covered"]


def test_i16_on_sqlite(tmp_path):
    _check(*upgrade_with_a_charged_account(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i16_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i16") as uri:
        _check(*upgrade_with_a_charged_account(uri))
