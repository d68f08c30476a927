"""Migration i18_receipts on a database with credited payments: they keep their rows, get no
second receipt (status ""), and the receipts job's index finds only payments marked due."""
from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_payments(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.extensions import db
        from app.payments.models import Payment
        from tenants.models import Tenant

        step(down_revision_of("i18_receipts"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Account, id=7, tenant_id=1, account_number="4821000007", name="Harbour", email="h@x.example")
        insert_at_revision(Payment, id=3, tenant_id=1, account_id=7, provider="stripe", provider_ref="cs_old",
                           status="succeeded", amount=25, currency="USD", ledger_entry_id=11)
        db.session.commit()
        step("i18_receipts")
        old = db.session.execute(text("SELECT provider_ref, status, receipt_status FROM payments")).one()
        db.session.execute(text("INSERT INTO payments (tenant_id, account_id, provider, purpose, method, status, amount,"
                                " currency, refunded_amount, disputed_amount, provider_ref, reference,"
                                " failure_message, created_at, updated_at, receipt_status) VALUES (1, 7, 'stripe',"
                                " 'topup', 'card', 'succeeded', 10, 'USD', 0, 0, 'cs_new', '', '',"
                                " '2026-12-04', '2026-12-04', 'due')"))
        db.session.commit()
        due = db.session.execute(text("SELECT provider_ref FROM payments WHERE receipt_status = 'due'")).scalars().all()
        return tuple(old), due


def _check(old, due):
    assert old == ("cs_old", "succeeded", "")
    assert due == ["cs_new"]


def test_i18_receipts_on_sqlite(tmp_path):
    _check(*upgrade_with_payments(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i18_receipts_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i18r") as uri:
        _check(*upgrade_with_payments(uri))
