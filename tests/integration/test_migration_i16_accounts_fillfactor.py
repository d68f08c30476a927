"""Migration i16_accounts_fillfactor on a database with accounts: the accounts stay, the table's
fillfactor is 50 from then on (PostgreSQL), and the balance updates of a billing run's batch
(every row of a page in one transaction) are HOT updates."""
from sqlalchemy import text

from tests.conftest import require_service
from tests.integration.migration_support import database_at, down_revision_of, insert_at_revision, postgresql_schema


def upgrade_with_accounts(uri):
    with database_at(uri) as step:
        from app.accounts.models import Account
        from app.extensions import db
        from tenants.models import Tenant

        step(down_revision_of("i16_accounts_fillfactor"))
        insert_at_revision(Tenant, id=1, name="Acme", slug="acme", path="/1/")
        insert_at_revision(Account, id=7, tenant_id=1, account_number="4821000007", name="Harbour", email="h@x.example")
        db.session.commit()
        step("i16_accounts_fillfactor")
        count = db.session.execute(text("SELECT count(*) FROM accounts")).scalar()
        if db.engine.dialect.name != "postgresql":
            return count, None, None
        options = db.session.execute(text("SELECT reloptions FROM pg_class WHERE oid = 'accounts'::regclass")).scalar()
        # Pages written under the new setting (copies of account 7, one statement), then one
        # transaction updating every row of them.
        from sqlalchemy import MetaData, Table

        table = Table("accounts", MetaData(), autoload_with=db.session.connection())
        rest = [c.name for c in table.columns if c.name not in ("id", "account_number") and c.computed is None]
        db.session.execute(text(
            f"INSERT INTO accounts (id, account_number, {', '.join(rest)}) "
            f"SELECT n, '48210' || lpad(n::text, 5, '0'), {', '.join('a.' + c for c in rest)} "
            "FROM generate_series(8, 399) AS n CROSS JOIN accounts a WHERE a.id = 7"))
        db.session.commit()
        db.session.execute(text("SELECT pg_stat_reset_single_table_counters('accounts'::regclass)"))
        db.session.commit()
        db.session.execute(text("UPDATE accounts SET balance = balance + 1 WHERE id >= 8"))
        db.session.commit()
        hot = None
        for _ in range(50):      # the statistics arrive once the transaction's counters are flushed
            db.session.execute(text("SELECT pg_stat_clear_snapshot()"))
            updated, hot = db.session.execute(text(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'accounts'::regclass")).one()
            db.session.commit()
            if updated:
                break
            import time
            time.sleep(0.1)
        return count, options, (updated, hot)


def test_i16_accounts_fillfactor_on_sqlite(tmp_path):
    count, options, _ = upgrade_with_accounts(f"sqlite:///{tmp_path / 'm.db'}")
    assert count == 1 and options is None


def test_i16_accounts_fillfactor_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with postgresql_schema("i16ff") as uri:
        count, options, (updated, hot) = upgrade_with_accounts(uri)
    assert count == 1 and options == ["fillfactor=50"]
    assert updated == 392 and hot >= 0.9 * updated
