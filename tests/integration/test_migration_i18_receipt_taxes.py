"""Migration i18_receipt_taxes on a database with a credited payment: it keeps its row, with no
taxes kept (its receipt went with its credit), and a new payment can keep its taxes."""
import json

from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_a_payment(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.extensions import db
        from app.payments.models import Payment
        from tenants.models import Tenant

        step(down_revision_of("i18_receipt_taxes"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Account, id=7, tenant_id=1, account_number="4821000007", name="Harbour", email="h@x.example")
        insert_at_revision(Payment, id=3, tenant_id=1, account_id=7, provider="stripe", provider_ref="cs_1",
                           amount=12, currency="GBP", status="succeeded", receipt_status="queued")
        db.session.commit()
        step("i18_receipt_taxes")
        before = db.session.execute(text("SELECT status, receipt_status, receipt_taxes FROM payments WHERE id = 3")).one()
        lines = [{"tax_id": 1, "name": "VAT 20%", "rate": "20", "compound": False, "base": "10.00", "amount": "2.00"}]
        db.session.execute(text("UPDATE payments SET receipt_taxes = :t WHERE id = 3"), {"t": json.dumps(lines)})
        db.session.commit()
        kept = db.session.execute(text("SELECT receipt_taxes FROM payments WHERE id = 3")).scalar()
        return tuple(before), (json.loads(kept) if isinstance(kept, str) else kept) == lines


def test_i18_receipt_taxes_on_sqlite(tmp_path):
    assert upgrade_with_a_payment(f"sqlite:///{tmp_path / 'm.db'}") == (("succeeded", "queued", None), True)


def test_i18_receipt_taxes_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i18rt") as uri:
        assert upgrade_with_a_payment(uri) == (("succeeded", "queued", None), True)
