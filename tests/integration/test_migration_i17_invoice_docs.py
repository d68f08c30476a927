"""Migration i17_invoice_docs on a database with invoice settings and a queued CSV report: the
settings get no logo, the email keeps its text attachment and has no binary one; a logo and a
PDF attachment can be stored afterwards."""
from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema

PDF = b"%PDF-1.7\n\x00\xff binary"


def upgrade_with_settings(uri):
    with database_at(uri) as step:
        from app.extensions import db
        from app.invoicing.models import InvoiceSettings
        from app.notifications.models import Notification
        from tenants.models import Tenant

        step(down_revision_of("i17_invoice_docs"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(InvoiceSettings, id=1, tenant_id=1, legal_name="Acme Telecom Ltd", footer="Thanks")
        insert_at_revision(Notification, id=1, tenant_id=1, kind="usage_report", to_email="r@x.example",
                           subject="Usage", body="see attached", attachment_name="calls.csv", attachment="a,b\n1,2\n")
        db.session.commit()
        step("i17_invoice_docs")
        settings = tuple(db.session.execute(text("SELECT legal_name, footer, logo, logo_type FROM invoice_settings")).one())
        mail = tuple(db.session.execute(text("SELECT attachment_name, attachment, attachment_data, attachment_type "
                                             "FROM notifications")).one())
        db.session.execute(text("UPDATE invoice_settings SET logo = :logo, logo_type = 'image/png'"), {"logo": PDF})
        db.session.execute(text("UPDATE notifications SET attachment_data = :d, attachment_type = 'application/pdf'"),
                           {"d": PDF})
        db.session.commit()
        stored = (bytes(db.session.execute(text("SELECT logo FROM invoice_settings")).scalar()),
                  bytes(db.session.execute(text("SELECT attachment_data FROM notifications")).scalar()))
        return settings, mail, stored


def _check(settings, mail, stored):
    assert settings == ("Acme Telecom Ltd", "Thanks", None, "")
    assert mail == ("calls.csv", "a,b\n1,2\n", None, "")
    assert stored == (PDF, PDF)


def test_i17_invoice_docs_on_sqlite(tmp_path):
    _check(*upgrade_with_settings(f"sqlite:///{tmp_path / 'm.db'}"))


def test_i17_invoice_docs_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i17d") as uri:
        _check(*upgrade_with_settings(uri))
