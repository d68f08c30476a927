"""Migration i17_invoicing on a database with accounts that have VAT rates: each distinct non-zero
rate of a tenant becomes a tax "VAT <rate>%" of that tenant and its accounts are linked to it;
accounts without VAT get no tax; nobody is tax exempt; an invoice is one per account and period."""
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_vat(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.models import Tenant

        step(down_revision_of("i17_invoicing"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Tenant, id=2, name="Bolt", slug="bolt", path="/2/")
        for id_, tenant, rate in ((7, 1, "20.000"), (8, 1, "20.000"), (9, 1, "7.500"), (10, 1, "0"),
                                  (11, 2, "20.000")):
            insert_at_revision(Account, id=id_, tenant_id=tenant, account_number=f"48210000{id_:02d}",
                               name=f"A{id_}", email=f"a{id_}@x.example", vat_rate=Decimal(rate))
        db.session.commit()
        step("i17_invoicing")
        taxes = db.session.execute(text("SELECT tenant_id, name, rate, position, compound, active FROM taxes "
                                        "ORDER BY tenant_id, position")).all()
        links = db.session.execute(text("SELECT a.account_id, t.name, t.tenant_id FROM account_taxes a "
                                        "JOIN taxes t ON t.id = a.tax_id ORDER BY a.account_id")).all()
        exempt = db.session.execute(text("SELECT count(*) FROM accounts WHERE tax_exempt")).scalar()
        insert = text("INSERT INTO invoices (tenant_id, account_id, kind, period_key, period_start, period_end, "
                      "status, currency, subtotal, tax_total, total, amount_paid, void_reason, customer, seller, "
                      "tax_exempt_reason, timezone, created_at, updated_at) VALUES (1, 7, 'invoice', '2026-11', "
                      "'2026-11-01', '2026-12-01', 'draft', 'USD', 0, 0, 0, 0, '', '{}', '{}', '', 'UTC', "
                      "'2026-12-01 00:00:00', '2026-12-01 00:00:00')")
        db.session.execute(insert)
        db.session.commit()
        try:
            db.session.execute(insert)
            db.session.commit()
            refused = False
        except IntegrityError:
            db.session.rollback()
            refused = True
        return [tuple(t) for t in taxes], [tuple(link) for link in links], exempt, refused


def _check(taxes, links, exempt, refused):
    assert [(t, n, Decimal(r), p, bool(c), bool(a)) for t, n, r, p, c, a in taxes] == [
        (1, "VAT 7.5%", Decimal("7.5"), 1, False, True),
        (1, "VAT 20%", Decimal("20"), 2, False, True),
        (2, "VAT 20%", Decimal("20"), 1, False, True),
    ]
    assert links == [(7, "VAT 20%", 1), (8, "VAT 20%", 1), (9, "VAT 7.5%", 1), (11, "VAT 20%", 2)]
    assert exempt == 0
    assert refused


def test_i17_invoicing_on_sqlite(tmp_path):
    _check(*upgrade_with_vat(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i17_invoicing_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i17i") as uri:
        _check(*upgrade_with_vat(uri))
